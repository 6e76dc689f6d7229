/*
 * link_power.h - turning a SimGrid link off and on. SimGrid 3.32's C API
 * has no sg_link_turn_off / sg_link_turn_on (only s4u::Link::turn_off and
 * turn_on), so one C++ file, link_power.cc, gives chaos.c a C function.
 */
#ifndef FLEETSIM_LINK_POWER_H
#define FLEETSIM_LINK_POWER_H

#include <simgrid/forward.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Turns link on (on = 1) or off (on = 0); the same state again is a no-op.
 * Every communication crossing a link turned off fails with a network
 * error (SG_ERROR_NETWORK at its wait), in flight or started while it is
 * off. Called from an actor. */
void chaos_link_power(sg_link_t link, int on);

#ifdef __cplusplus
}
#endif

#endif
