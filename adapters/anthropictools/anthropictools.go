// Package anthropictools connects a podsandbox console toolset to the Anthropic Go SDK
// (github.com/anthropics/anthropic-sdk-go/v2).
//
//	params.Tools = anthropictools.Tools(ts.Tools())
//	params.System = []anthropic.TextBlockParam{{Text: ts.SystemPrompt()}}
//	msg, err := client.Messages.New(ctx, params)
//	params.Messages = append(params.Messages, msg.ToParam())
//	if reply, ok, err := anthropictools.Dispatch(ctx, ts, msg); ok {
//		params.Messages = append(params.Messages, reply) // the tool results, as a user message
//	}
//
// Calls run one after another, in the order the model made them. A call the model can fix (an
// unknown tool, bad arguments) is answered with an "Error: ..." tool result marked is_error;
// Dispatch returns an error only when the toolset does (the ctx ended, the sandbox is unusable)
// or an approver fails.
//
// Tools marked RequiresApproval run without asking unless WithApprover is given.
package anthropictools

import (
	"context"
	"encoding/json"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/podsandbox/podsandbox/adapters/internal/dispatch"
	"github.com/podsandbox/podsandbox/toolset"
)

// Approver decides whether a call of a tool that requires approval (Tool.RequiresApproval) may
// run. arguments are the call's JSON input as the model sent it.
type Approver func(ctx context.Context, tool toolset.Tool, arguments []byte) (bool, error)

// Option configures Call and Dispatch.
type Option func(*options)

type options struct{ approve dispatch.Approver }

// WithApprover puts each call of a tool that requires approval to a. A refused call is answered
// with "The tool call was denied." and does not run.
func WithApprover(a Approver) Option {
	return func(o *options) { o.approve = dispatch.Approver(a) }
}

// Denied is the tool result for a call the approver refused.
const Denied = dispatch.Denied

// Tools converts tool definitions to Messages API tool params. The schemas' properties keep
// their order.
func Tools(tools []toolset.Tool) []anthropic.ToolUnionParam {
	out := make([]anthropic.ToolUnionParam, len(tools))
	for i, t := range tools {
		out[i] = anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
			Name:        t.Name,
			Description: anthropic.String(t.Description),
			InputSchema: inputSchema(t.Parameters),
		}}
	}
	return out
}

func inputSchema(schema json.RawMessage) anthropic.ToolInputSchemaParam {
	var m map[string]json.RawMessage
	var s anthropic.ToolInputSchemaParam
	if err := json.Unmarshal(schema, &m); err != nil {
		return s
	}
	for k, v := range m {
		switch k {
		case "type":
		case "properties":
			s.Properties = v
		case "required":
			_ = json.Unmarshal(v, &s.Required)
		default:
			if s.ExtraFields == nil {
				s.ExtraFields = map[string]any{}
			}
			s.ExtraFields[k] = v
		}
	}
	return s
}

// Call runs one tool_use block and returns the tool_result block answering it. An empty result
// is sent without content, since the API refuses an empty text block.
func Call(ctx context.Context, ts *toolset.Toolset, block anthropic.ToolUseBlock, opts ...Option) (anthropic.ContentBlockParamUnion, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	text, isError, err := dispatch.Run(ctx, ts, o.approve, block.Name, block.Input)
	if err != nil {
		return anthropic.ContentBlockParamUnion{}, err
	}
	result := anthropic.ToolResultBlockParam{ToolUseID: block.ID}
	if text != "" {
		result.Content = []anthropic.ToolResultBlockParamContentUnion{{OfText: &anthropic.TextBlockParam{Text: text}}}
	}
	if isError {
		result.IsError = anthropic.Bool(true)
	}
	return anthropic.ContentBlockParamUnion{OfToolResult: &result}, nil
}

// Results runs every tool_use block of msg, in order, and returns one tool_result block per
// call. It returns nil for a message without tool_use blocks.
func Results(ctx context.Context, ts *toolset.Toolset, msg *anthropic.Message, opts ...Option) ([]anthropic.ContentBlockParamUnion, error) {
	var out []anthropic.ContentBlockParamUnion
	for _, block := range msg.Content {
		if block.Type != "tool_use" {
			continue
		}
		r, err := Call(ctx, ts, block.AsToolUse(), opts...)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Dispatch runs every tool_use block of msg and returns the user message carrying their
// results, to append after msg.ToParam(). ok is false when msg has no tool_use block.
func Dispatch(ctx context.Context, ts *toolset.Toolset, msg *anthropic.Message, opts ...Option) (reply anthropic.MessageParam, ok bool, err error) {
	results, err := Results(ctx, ts, msg, opts...)
	if err != nil || len(results) == 0 {
		return anthropic.MessageParam{}, false, err
	}
	return anthropic.NewUserMessage(results...), true, nil
}
