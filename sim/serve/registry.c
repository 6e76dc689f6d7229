/*
 * registry.c - the server models a scenario's model can name, as
 * policies/registry.c lists the balancers. Linear lookup: there are few.
 */
#include "serve.h"

#include <string.h>

const serve_ops *const serve_registry[] = { &serve_batch, &serve_llm, NULL };

const serve_ops *serve_find(const char *name)
{
    for (int i = 0; serve_registry[i]; i++)
        if (strcmp(serve_registry[i]->name, name) == 0)
            return serve_registry[i];
    return NULL;
}
