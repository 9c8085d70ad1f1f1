#!/usr/bin/env bash
# make demo: placeholder, to be written.
echo "make demo: not yet" >&2
exit 1
