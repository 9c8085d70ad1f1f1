// Package upstreamclient holds the end-to-end test of the in-pod server against the requests of
// pydantic-ai-backend's Python client (KubernetesPodSandbox, mode="http"): a Python script
// (testdata/g1client.py, run with Debian's python3 and python3-httpx) sends what that client sends
// for each of its methods to a real pod of the server image, and the test checks what comes back
// and what ends up on disk. Run it with `make e2e` (build tag e2e).
package upstreamclient
