#!/usr/bin/env bash
# make bench: placeholder, to be written.
echo "make bench: not yet" >&2
exit 1
