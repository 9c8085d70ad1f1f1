#!/usr/bin/env bash
# Faults of the local cluster's own daemons, for the node drills (TestNodeDrill*, run by
# hack/test.sh after the other e2e tests, and by make chaos):
#   hack/cluster/fault.sh pause DAEMON SECONDS   SIGSTOP the daemon, wait, SIGCONT it
#   hack/cluster/fault.sh restart DAEMON [SIG]   stop it (SIG, default TERM; SIGKILL after 10 s)
#                                                and start it again with the same command line,
#                                                then wait until it answers (kube-apiserver:
#                                                /readyz); KILL is a crash: connections drop at once
# DAEMON is one recorded in $RUN/NAME.pid (kube-apiserver, kubelet, containerd, ...). A pause
# resumes the daemon also when this script is interrupted; cluster-down resumes a daemon left
# stopped by a killed script before it stops it.
. "$(dirname "$0")/lib.sh"
require_root "hack/cluster/fault.sh"
set -euo pipefail

usage() { die "usage: hack/cluster/fault.sh pause DAEMON SECONDS | restart DAEMON [TERM|KILL]"; }
[ $# -ge 2 ] || usage
op=$1 n=$2
p=$(pid_of "$n") || die "$n is not running (no live PID in $RUN/$n.pid): make cluster-up"

case $op in
  pause)
    [ $# = 3 ] && [ "$3" -gt 0 ] 2>/dev/null || usage
    trap 'kill -CONT "$p" 2>/dev/null || true' EXIT
    trap 'exit 130' INT TERM
    kill -STOP "$p"
    log "$n (PID $p) stopped for $3 s"
    sleep "$3"
    kill -CONT "$p"
    log "$n (PID $p) resumed"
    ;;
  restart)
    sig=${3:-TERM}
    case $sig in TERM | KILL) ;; *) usage ;; esac
    mapfile -d '' argv <"/proc/$p/cmdline"
    [ ${#argv[@]} -gt 0 ] || die "cannot read $n's command line"
    kill -"$sig" "$p"
    for _ in $(seq 100); do [ -d "/proc/$p" ] || break; sleep 0.1; done
    [ -d "/proc/$p" ] && kill -9 "$p" 2>/dev/null || true
    while [ -d "/proc/$p" ]; do sleep 0.05; done
    log "$n (PID $p) stopped; starting it again"
    start "$n" "${argv[@]}"
    case $n in
      kube-apiserver) waitfor "kube-apiserver /readyz" 120 kube-apiserver api /readyz ;;
      kubelet) waitfor "the kubelet and the node" 120 kubelet kubelet_ready ;;
    esac
    log "$n is back (PID $(pid_of "$n"))"
    ;;
  *) usage ;;
esac
