// Package podsandbox gives AI agents and Go services their own Kubernetes pods as sandboxes: create
// a pod, run shell commands in it, read, write, edit, list, glob and grep its files, keep one pod
// per user session, and clean up. It is a Go port of pydantic-ai-backend's KubernetesPodSandbox,
// SessionManager and console toolset (see the toolset package), with warm pools, a reaper, and two
// transports that give identical results.
//
// # Client
//
// A Client (NewClient) is the one owner of a connection to a cluster: the clientset, one pod
// watch per namespace shared by every sandbox, factory, warm pool and reaper made from it, the
// HTTP clients, and their goroutines. Make one per process and cluster; Close it last. The package
// keeps no global state.
//
// # Sandboxes
//
// Client.NewSandbox (or NewKubernetesPodSandbox, for one sandbox with a private Client) folds the
// options into one spec and validates it as a whole: a contradiction is an error that says what
// to change. No network I/O happens until Start, which creates the pod and waits for it with the
// shared watch, failing early with a *StartupError when the pod cannot start (missing image,
// crash, unschedulable, OOM). Stop deletes it. Failures are Go errors for errors.Is and errors.As;
// a command that exits non-zero is a result, not an error.
//
// # Transports
//
// ModeHTTP (the default) talks to the in-pod server of cmd/sandbox-server, reached by pod IP from
// inside the cluster and through the API server's pods/proxy from outside, or by port-forward
// (WithReach). Its token lives in a Secret owned by the pod. ModeAPI runs everything over the
// pods/exec API (WebSocket v5 with SPDY fallback) and works with any image that has /bin/sh and
// timeout: a pods/exec per call by default; with WithAgent, the in-pod server copied into the pod
// and spoken to as HTTP/2 over one long-lived pods/exec, at about HTTP mode's speed; with
// WithExecChannels, long-lived /bin/sh exec channels. Both kill a command's whole process tree on
// timeout or cancel, never cut output silently, and do not hang on background children that keep
// stdout open.
//
// # Background processes
//
// StartProcess runs a command detached, under a small /bin/sh supervisor in the pod, and returns a
// *Process whose id any later caller re-attaches to (KubernetesPodSandbox.Process), from another
// replica or after a restart: dev servers, watchers and long builds outlive the call, the
// connection and the caller. Its output is kept in the pod up to a bound and read by cursor
// (ReadOutput) or followed (Follow); Signal reaches its whole process group; Wait and Status tell
// running, exited with its code, or lost.
//
// # Isolation
//
// Every sandbox gets a NetworkPolicy, owned by its pod, that denies all egress except DNS and
// accepts connections only on the in-pod server's port (HTTP mode) or none (API mode);
// WithEgressAllow adds destinations, WithIngressFrom names who may connect, WithOpenNetwork drops
// the policy. It takes effect where the cluster runs an enforcer. WithRuntimeClass runs the pod
// under another runtime, such as gVisor; Start fails at once with a *StartupError when the class
// or its handler is missing.
//
// # Sessions
//
// SessionManager keeps one sandbox per session id from a Factory (Client.Factory), adopts pods
// made by other replicas, claims ready pods from a warm pool built from the same spec
// (WithWarmPool) in milliseconds, releases idle sessions in a cleanup loop, and runs a Reaper that
// deletes expired podsandbox pods even when the process that made them was killed. It owns its
// goroutines: Shutdown cancels and waits for all of them.
//
// # Permissions
//
// deploy/rbac.yaml lists exactly the verbs the library uses in its namespace.
package podsandbox
