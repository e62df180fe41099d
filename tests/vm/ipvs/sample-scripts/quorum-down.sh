#!/bin/sh
# keepalived's quorum sample's quorum_down: the sample's lane (sample-lane.sh), whose network
# namespace this runs in, reads what ran.
echo quorum-down >> "/run/quorum-events.$(readlink /proc/self/ns/net | tr -dc 0-9)"
