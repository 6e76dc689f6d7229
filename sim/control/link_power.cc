/*
 * link_power.cc - chaos_link_power (link_power.h): SimGrid's s4u
 * Link::turn_off / turn_on behind a C function, since the C API of 3.32
 * has none. The only C++ in sim/ (monitoring/re2_shim.cc is the other in
 * fleetsim); it includes nothing of fleetsim but its own header.
 *
 * What SimGrid does (StandardLinkImpl.cpp, turn_off: every action on the
 * link's constraint, started or in its latency phase, is marked failed at
 * the current time; network_cm02.cpp, NetworkCm02Model::communicate: its
 * comm_get_route_info finds a link of the route off and the action is
 * created failed): a comm fails at the moment the link goes off, or at
 * once when started across an off link, and its waiters get
 * SG_ERROR_NETWORK. A mailbox is not tied to a link: puts and gets still
 * match, and the communication they make then fails.
 * tests/serve/test_llm_kvcut.c checks each of these by hand.
 */
#include "link_power.h"

#include <simgrid/s4u/Link.hpp>

void chaos_link_power(sg_link_t link, int on)
{
    if (on)
        link->turn_on();
    else
        link->turn_off();
}
