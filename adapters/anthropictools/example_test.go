package anthropictools_test

import (
	"context"
	"fmt"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/adapters/anthropictools"
	"github.com/podsandbox/podsandbox/toolset"
)

// An agent loop over the Messages API. It needs an API key (ANTHROPIC_API_KEY) and a started
// sandbox, so it is compiled but not run.
func Example() {
	ctx := context.Background()
	var sb podsandbox.Sandbox // a started *podsandbox.KubernetesPodSandbox, for example
	ts, err := toolset.New(sb)
	if err != nil {
		panic(err)
	}
	client := anthropic.NewClient()
	params := anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 4096,
		System:    []anthropic.TextBlockParam{{Text: ts.SystemPrompt()}},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Fix the failing test."))},
		Tools:     anthropictools.Tools(ts.Tools()),
	}
	for {
		msg, err := client.Messages.New(ctx, params)
		if err != nil {
			panic(err)
		}
		params.Messages = append(params.Messages, msg.ToParam())
		reply, ok, err := anthropictools.Dispatch(ctx, ts, msg)
		if err != nil {
			panic(err) // the sandbox is gone or ctx ended: replace the sandbox
		}
		if !ok {
			for _, block := range msg.Content {
				fmt.Print(block.Text)
			}
			return
		}
		params.Messages = append(params.Messages, reply)
	}
}
