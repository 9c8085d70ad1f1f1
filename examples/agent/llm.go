package main

// Real models, with nothing but net/http: the Anthropic Messages API and the OpenAI Chat
// Completions API. They are deliberately minimal (no streaming, no retries) so that the example
// needs no SDK. For production use, the adapters module (github.com/podsandbox/podsandbox/adapters)
// connects the toolset to the official Anthropic and OpenAI Go SDKs.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/podsandbox/podsandbox/toolset"
)

// llmTimeout bounds one model request.
const llmTimeout = 2 * time.Minute

// Anthropic is a Model backed by the Anthropic Messages API (POST /v1/messages).
type Anthropic struct {
	Key, Model, BaseURL string // BaseURL default https://api.anthropic.com
	System              string
	Tools               []toolset.Tool
	MaxTokens           int
	Client              *http.Client
}

type anthropicBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   string          `json:"content,omitempty"`
	IsError   bool            `json:"is_error,omitempty"`
}

type anthropicMessage struct {
	Role    string           `json:"role"`
	Content []anthropicBlock `json:"content"`
}

type anthropicTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type anthropicRequest struct {
	Model     string             `json:"model"`
	MaxTokens int                `json:"max_tokens"`
	System    string             `json:"system,omitempty"`
	Tools     []anthropicTool    `json:"tools,omitempty"`
	Messages  []anthropicMessage `json:"messages"`
}

type anthropicResponse struct {
	Content    []anthropicBlock `json:"content"`
	StopReason string           `json:"stop_reason"`
}

// Next sends the conversation and maps the reply's text and tool_use blocks to a Message.
func (a *Anthropic) Next(ctx context.Context, history []Message) (Message, error) {
	req := anthropicRequest{Model: a.Model, MaxTokens: a.MaxTokens, System: a.System}
	if req.MaxTokens == 0 {
		req.MaxTokens = 2048
	}
	for _, t := range a.Tools {
		req.Tools = append(req.Tools, anthropicTool{Name: t.Name, Description: t.Description, InputSchema: t.Parameters})
	}
	for _, m := range history {
		switch m.Role {
		case RoleUser:
			req.Messages = append(req.Messages, anthropicMessage{Role: "user", Content: []anthropicBlock{{Type: "text", Text: m.Text}}})
		case RoleAssistant:
			var blocks []anthropicBlock
			if m.Text != "" {
				blocks = append(blocks, anthropicBlock{Type: "text", Text: m.Text})
			}
			for _, c := range m.ToolCalls {
				blocks = append(blocks, anthropicBlock{Type: "tool_use", ID: c.ID, Name: c.Name, Input: object(c.Arguments)})
			}
			req.Messages = append(req.Messages, anthropicMessage{Role: "assistant", Content: blocks})
		case RoleTool:
			var blocks []anthropicBlock
			for _, r := range m.Results {
				blocks = append(blocks, anthropicBlock{Type: "tool_result", ToolUseID: r.CallID, Content: r.Content, IsError: r.IsError})
			}
			req.Messages = append(req.Messages, anthropicMessage{Role: "user", Content: blocks})
		}
	}
	var resp anthropicResponse
	headers := map[string]string{"x-api-key": a.Key, "anthropic-version": "2023-06-01"}
	if err := postJSON(ctx, a.Client, strings.TrimRight(a.BaseURL, "/")+"/v1/messages", headers, req, &resp); err != nil {
		return Message{}, fmt.Errorf("anthropic: %w", err)
	}
	out := Message{Role: RoleAssistant}
	var text []string
	for _, b := range resp.Content {
		switch b.Type {
		case "text":
			text = append(text, b.Text)
		case "tool_use":
			out.ToolCalls = append(out.ToolCalls, ToolCall{ID: b.ID, Name: b.Name, Arguments: object(b.Input)})
		}
	}
	out.Text = strings.Join(text, "\n")
	return out, nil
}

// OpenAI is a Model backed by the OpenAI Chat Completions API (POST /chat/completions).
type OpenAI struct {
	Key, Model, BaseURL string // BaseURL default https://api.openai.com/v1
	System              string
	Tools               []toolset.Tool
	Client              *http.Client
}

type openaiToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type openaiMessage struct {
	Role       string           `json:"role"`
	Content    *string          `json:"content"`
	ToolCalls  []openaiToolCall `json:"tool_calls,omitempty"`
	ToolCallID string           `json:"tool_call_id,omitempty"`
}

type openaiTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

type openaiRequest struct {
	Model    string          `json:"model"`
	Messages []openaiMessage `json:"messages"`
	Tools    []openaiTool    `json:"tools,omitempty"`
}

type openaiResponse struct {
	Choices []struct {
		Message openaiMessage `json:"message"`
	} `json:"choices"`
}

// Next sends the conversation and maps the first choice's content and tool_calls to a Message.
func (o *OpenAI) Next(ctx context.Context, history []Message) (Message, error) {
	str := func(s string) *string { return &s }
	req := openaiRequest{Model: o.Model}
	if o.System != "" {
		req.Messages = append(req.Messages, openaiMessage{Role: "system", Content: str(o.System)})
	}
	for _, t := range o.Tools {
		var ot openaiTool
		ot.Type = "function"
		ot.Function.Name, ot.Function.Description, ot.Function.Parameters = t.Name, t.Description, t.Parameters
		req.Tools = append(req.Tools, ot)
	}
	for _, m := range history {
		switch m.Role {
		case RoleUser:
			req.Messages = append(req.Messages, openaiMessage{Role: "user", Content: str(m.Text)})
		case RoleAssistant:
			om := openaiMessage{Role: "assistant"}
			if m.Text != "" {
				om.Content = str(m.Text)
			}
			for _, c := range m.ToolCalls {
				var tc openaiToolCall
				tc.ID, tc.Type = c.ID, "function"
				tc.Function.Name, tc.Function.Arguments = c.Name, string(object(c.Arguments))
				om.ToolCalls = append(om.ToolCalls, tc)
			}
			req.Messages = append(req.Messages, om)
		case RoleTool:
			for _, r := range m.Results {
				req.Messages = append(req.Messages, openaiMessage{Role: "tool", ToolCallID: r.CallID, Content: str(r.Content)})
			}
		}
	}
	var resp openaiResponse
	headers := map[string]string{"Authorization": "Bearer " + o.Key}
	if err := postJSON(ctx, o.Client, strings.TrimRight(o.BaseURL, "/")+"/chat/completions", headers, req, &resp); err != nil {
		return Message{}, fmt.Errorf("openai: %w", err)
	}
	if len(resp.Choices) == 0 {
		return Message{}, errors.New("openai: the response has no choices")
	}
	m := resp.Choices[0].Message
	out := Message{Role: RoleAssistant}
	if m.Content != nil {
		out.Text = *m.Content
	}
	for _, tc := range m.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: object(json.RawMessage(tc.Function.Arguments))})
	}
	return out, nil
}

// postJSON POSTs in as JSON and decodes a 2xx answer into out. Other answers become an error
// with the API's own message when it has one ({"error": {"message": ...}}, both APIs' shape).
func postJSON(ctx context.Context, client *http.Client, url string, headers map[string]string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, llmTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading the response: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
			msg = e.Error.Message
		}
		return fmt.Errorf("%s: %s", resp.Status, msg)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding the response: %w", err)
	}
	return nil
}

// object returns args, or {} when the model sent no arguments at all.
func object(args json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(args)) == 0 {
		return json.RawMessage("{}")
	}
	return args
}
