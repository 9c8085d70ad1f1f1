package mcpserver_test

import (
	"context"
	"log"
	"log/slog"
	"net/http"
	"time"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/mcpserver"
	"github.com/podsandbox/podsandbox/toolset"
)

// An MCP server over streamable HTTP: each MCP session gets its own API-mode sandbox.
func ExampleNew() {
	ctx := context.Background()
	c, err := podsandbox.NewClient(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	f, err := c.Factory("python:3.12-slim", podsandbox.WithMode(podsandbox.ModeAPI), podsandbox.WithNamespace("sandboxes"))
	if err != nil {
		log.Fatal(err)
	}
	m, err := podsandbox.NewSessionManager(f)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Shutdown(ctx)
	s, err := mcpserver.New(m,
		mcpserver.WithApproveAll(), // the MCP client asks its user before each call
		mcpserver.WithToolsetOptions(toolset.WithEditFormat(toolset.EditFormatHashline)),
		mcpserver.WithLogger(slog.Default()))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	log.Fatal(http.ListenAndServe("127.0.0.1:8090", s.HTTPHandler(30*time.Minute)))
}
