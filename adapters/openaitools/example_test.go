package openaitools_test

import (
	"context"
	"fmt"

	"github.com/openai/openai-go/v3"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/adapters/openaitools"
	"github.com/podsandbox/podsandbox/toolset"
)

// An agent loop over Chat Completions. It needs an API key (OPENAI_API_KEY) and a started
// sandbox, so it is compiled but not run.
func Example() {
	ctx := context.Background()
	var sb podsandbox.Sandbox // a started *podsandbox.KubernetesPodSandbox, for example
	ts, err := toolset.New(sb)
	if err != nil {
		panic(err)
	}
	client := openai.NewClient()
	params := openai.ChatCompletionNewParams{
		Model: openai.ChatModelGPT4_1,
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage(ts.SystemPrompt()),
			openai.UserMessage("Write hello.py and run it."),
		},
		Tools: openaitools.Tools(ts.Tools()),
	}
	approve := openaitools.WithApprover(func(_ context.Context, tool toolset.Tool, args []byte) (bool, error) {
		fmt.Printf("allowing %s %s\n", tool.Name, args) // ask a person here
		return true, nil
	})
	for {
		completion, err := client.Chat.Completions.New(ctx, params)
		if err != nil {
			panic(err)
		}
		msg := completion.Choices[0].Message
		if len(msg.ToolCalls) == 0 {
			fmt.Println(msg.Content)
			return
		}
		results, err := openaitools.Dispatch(ctx, ts, msg, approve)
		if err != nil {
			panic(err) // the sandbox is gone or ctx ended: replace the sandbox
		}
		params.Messages = append(append(params.Messages, msg.ToParam()), results...)
	}
}
