// Package dispatch is what both adapters do with one tool call: approval, then
// toolset.CallResult.
package dispatch

import (
	"context"
	"fmt"

	"github.com/podsandbox/podsandbox/toolset"
)

// Denied is the result given to the model for a call its approver refused.
const Denied = "The tool call was denied."

// Approver decides whether a call of a tool that requires approval may run.
type Approver func(ctx context.Context, tool toolset.Tool, arguments []byte) (bool, error)

// Run runs one call. A tool that requires approval is first put to approve, when it is non-nil;
// a refusal is the result Denied. Errors the model can fix are error results (isError); the
// error is for the rest (the ctx ended, the sandbox is unusable, the approver failed).
func Run(ctx context.Context, ts *toolset.Toolset, approve Approver, name string, arguments []byte) (text string, isError bool, err error) {
	if tool, ok := ts.Tool(name); ok && tool.RequiresApproval && approve != nil {
		ok, err := approve(ctx, tool, arguments)
		if err != nil {
			return "", false, fmt.Errorf("approving %s: %w", name, err)
		}
		if !ok {
			return Denied, false, nil
		}
	}
	return ts.CallResult(ctx, name, arguments)
}
