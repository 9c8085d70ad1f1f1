// Package openaitools connects a podsandbox console toolset to the OpenAI Go SDK
// (github.com/openai/openai-go/v3), for both the Chat Completions and the Responses API.
//
// Chat Completions:
//
//	params.Tools = openaitools.Tools(ts.Tools())
//	completion, err := client.Chat.Completions.New(ctx, params)
//	msg := completion.Choices[0].Message
//	params.Messages = append(params.Messages, msg.ToParam())
//	results, err := openaitools.Dispatch(ctx, ts, msg)
//	params.Messages = append(params.Messages, results...)
//
// Responses:
//
//	params.Tools = openaitools.ResponsesTools(ts.Tools())
//	resp, err := client.Responses.New(ctx, params)
//	outputs, err := openaitools.DispatchResponse(ctx, ts, resp)
//	// next request: PreviousResponseID = resp.ID, Input = outputs
//
// Calls run one after another, in the order the model made them. A call the model can fix (an
// unknown tool, bad arguments) is answered with an "Error: ..." text; Dispatch returns an error
// only when the toolset does (the ctx ended, the sandbox is unusable) or an approver fails.
//
// Tools marked RequiresApproval run without asking unless WithApprover is given.
package openaitools

import (
	"context"
	"encoding/json"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/packages/param"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"

	"github.com/podsandbox/podsandbox/adapters/internal/dispatch"
	"github.com/podsandbox/podsandbox/toolset"
)

// Approver decides whether a call of a tool that requires approval (Tool.RequiresApproval) may
// run. arguments are the call's JSON arguments as the model sent them.
type Approver func(ctx context.Context, tool toolset.Tool, arguments []byte) (bool, error)

// Option configures Call and Dispatch.
type Option func(*options)

type options struct{ approve dispatch.Approver }

// WithApprover puts each call of a tool that requires approval to a. A refused call is answered
// with "The tool call was denied." and does not run.
func WithApprover(a Approver) Option {
	return func(o *options) { o.approve = dispatch.Approver(a) }
}

func resolve(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Denied is the tool result for a call the approver refused.
const Denied = dispatch.Denied

// parameters turns a JSON Schema into the SDK's map. Nested values stay raw JSON, so the
// properties keep their order.
func parameters(schema json.RawMessage) map[string]any {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(schema, &m); err != nil {
		return map[string]any{"type": "object", "properties": map[string]any{}}
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Tools converts tool definitions to Chat Completions function tools.
func Tools(tools []toolset.Tool) []openai.ChatCompletionToolUnionParam {
	out := make([]openai.ChatCompletionToolUnionParam, len(tools))
	for i, t := range tools {
		out[i] = openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name:        t.Name,
			Description: openai.String(t.Description),
			Parameters:  parameters(t.Parameters),
		})
	}
	return out
}

// ResponsesTools converts tool definitions to Responses API function tools. Strict mode is off:
// the schemas have optional arguments, which strict mode does not allow.
func ResponsesTools(tools []toolset.Tool) []responses.ToolUnionParam {
	out := make([]responses.ToolUnionParam, len(tools))
	for i, t := range tools {
		out[i] = responses.ToolUnionParam{OfFunction: &responses.FunctionToolParam{
			Name:        t.Name,
			Description: openai.String(t.Description),
			Parameters:  parameters(t.Parameters),
			Strict:      param.NewOpt(false),
		}}
	}
	return out
}

// Call runs one tool call of a chat completion message and returns the tool message answering
// it. A custom (non-function) tool call is answered as an unknown tool.
func Call(ctx context.Context, ts *toolset.Toolset, call openai.ChatCompletionMessageToolCallUnion, opts ...Option) (openai.ChatCompletionMessageParamUnion, error) {
	name, args := call.Function.Name, []byte(call.Function.Arguments)
	if call.Type == "custom" {
		name, args = call.Custom.Name, nil
	}
	text, _, err := dispatch.Run(ctx, ts, resolve(opts).approve, name, args)
	if err != nil {
		return openai.ChatCompletionMessageParamUnion{}, err
	}
	return openai.ToolMessage(text, call.ID), nil
}

// Dispatch runs every tool call of msg, in order, and returns one tool message per call, ready
// to append after msg.ToParam(). It returns nil for a message without tool calls.
func Dispatch(ctx context.Context, ts *toolset.Toolset, msg openai.ChatCompletionMessage, opts ...Option) ([]openai.ChatCompletionMessageParamUnion, error) {
	var out []openai.ChatCompletionMessageParamUnion
	for _, call := range msg.ToolCalls {
		m, err := Call(ctx, ts, call, opts...)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// CallResponse runs one function call of a Responses API response and returns the
// function_call_output input item answering it.
func CallResponse(ctx context.Context, ts *toolset.Toolset, call responses.ResponseFunctionToolCall, opts ...Option) (responses.ResponseInputItemUnionParam, error) {
	text, _, err := dispatch.Run(ctx, ts, resolve(opts).approve, call.Name, []byte(call.Arguments))
	if err != nil {
		return responses.ResponseInputItemUnionParam{}, err
	}
	item := responses.ResponseInputItemParamOfFunctionCallOutput(text)
	item.OfFunctionCallOutput.CallID = param.NewOpt(call.CallID)
	return item, nil
}

// DispatchResponse runs every function call in resp.Output, in order, and returns one
// function_call_output item per call, ready to send as the next request's input (with
// PreviousResponseID set to resp.ID). It returns nil for a response without function calls.
func DispatchResponse(ctx context.Context, ts *toolset.Toolset, resp *responses.Response, opts ...Option) ([]responses.ResponseInputItemUnionParam, error) {
	var out []responses.ResponseInputItemUnionParam
	for _, item := range resp.Output {
		if item.Type != "function_call" {
			continue
		}
		in, err := CallResponse(ctx, ts, item.AsFunctionCall(), opts...)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}
