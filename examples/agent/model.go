package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Role says who wrote a message.
type Role string

const (
	RoleUser      Role = "user"      // the task
	RoleAssistant Role = "assistant" // the model: tool calls, or the final answer
	RoleTool      Role = "tool"      // the results of the previous message's tool calls
)

// Message is one entry of the conversation, in a shape every LLM API can be mapped to.
type Message struct {
	Role Role
	// Text is the task (user) or what the model said (assistant).
	Text string
	// ToolCalls are the assistant's tool calls; none means Text is the final answer.
	ToolCalls []ToolCall
	// Results answer the previous assistant message's calls, in order (tool).
	Results []ToolResult
}

// ToolCall is one tool call of the model.
type ToolCall struct {
	ID        string
	Name      string
	Arguments json.RawMessage // a JSON object
}

// ToolResult is the toolset's answer to one call.
type ToolResult struct {
	CallID  string
	Name    string
	Content string
	IsError bool
}

// Model decides the next step: tool calls, or the final answer when it returns none.
type Model interface {
	Next(ctx context.Context, history []Message) (Message, error)
}

// Scripted is the offline model: it does the seed task with the calls a real model makes for it,
// write_file then read_file, then answers with what it read. It makes no network call.
type Scripted struct {
	Path    string
	Content string
}

// Next returns the step for the number of turns taken so far.
func (s Scripted) Next(_ context.Context, history []Message) (Message, error) {
	turns := 0
	var last *ToolResult
	for i := range history {
		if history[i].Role == RoleAssistant {
			turns++
		}
		if history[i].Role == RoleTool && len(history[i].Results) > 0 {
			last = &history[i].Results[len(history[i].Results)-1]
		}
	}
	call := func(name string, args any) (Message, error) {
		raw, err := json.Marshal(args)
		if err != nil {
			return Message{}, err
		}
		id := fmt.Sprintf("call_%d", turns+1)
		return Message{Role: RoleAssistant, ToolCalls: []ToolCall{{ID: id, Name: name, Arguments: raw}}}, nil
	}
	switch {
	case turns == 0:
		return call("write_file", struct {
			Path    string `json:"path"`
			Content string `json:"content"`
		}{s.Path, s.Content})
	case last == nil:
		return Message{}, fmt.Errorf("scripted model: turn %d without a tool result", turns)
	case turns == 1 && !strings.HasPrefix(last.Content, "Wrote "):
		return Message{Role: RoleAssistant, Text: "I could not create " + s.Path + ": " + last.Content}, nil
	case turns == 1:
		return call("read_file", struct {
			Path string `json:"path"`
		}{s.Path})
	default:
		return Message{Role: RoleAssistant, Text: fmt.Sprintf("I created %s and read it back. It contains: %s",
			s.Path, strings.Join(stripLineNumbers(last.Content), "\n"))}, nil
	}
}

// stripLineNumbers turns read_file's `cat -n` lines ("     1\thello world") back into text.
func stripLineNumbers(s string) []string {
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if _, text, ok := strings.Cut(l, "\t"); ok {
			l = text
		}
		lines = append(lines, l)
	}
	return lines
}
