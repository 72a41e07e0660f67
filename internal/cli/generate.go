package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// generate runs `sipward rewrite generate`: examples as input=output
// arguments, type=destination|cli, unchanged=n1,n2 for numbers the rule must
// leave alone. It prints the rule, what it does in words and to a few other
// numbers; when no single rule fits, the rule proposed for each group.
func generate(c *client, args []string, stdout io.Writer, output string) error {
	req := map[string]any{"type": "destination"}
	var examples []map[string]string
	var unchanged []string
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		switch {
		case !ok:
			return fmt.Errorf("rewrite generate: %q: want input=output, type=destination|cli or unchanged=n1,n2", a)
		case k == "type":
			req["type"] = v
		case k == "unchanged":
			unchanged = append(unchanged, strings.Split(v, ",")...)
		default:
			examples = append(examples, map[string]string{"input": k, "output": v})
		}
	}
	if len(examples) == 0 {
		return fmt.Errorf("rewrite generate: give at least one example as input=output, such as 01782123456=441782123456")
	}
	req["examples"], req["unchanged"] = examples, unchanged
	body, _ := json.Marshal(req)
	out, status, err := c.sendStatus("POST", "/rewrites/generate", body, "application/json", 422)
	if err != nil {
		return err
	}
	if output == "json" {
		_, err := stdout.Write(out)
		return err
	}
	var res struct {
		Rule        genRule `json:"rule"`
		Explanation string  `json:"explanation"`
		Samples     []struct {
			Input, Output string
			Matched       bool
		} `json:"samples"`
		Error  struct{ Message string } `json:"error"`
		Groups []struct {
			Examples    []struct{ Input, Output string } `json:"examples"`
			Rule        genRule                          `json:"rule"`
			Explanation string                           `json:"explanation"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return fmt.Errorf("response is not JSON: %w", err)
	}
	if status == 422 {
		fmt.Fprintf(stdout, "%s\n", res.Error.Message)
		for i, g := range res.Groups {
			fmt.Fprintf(stdout, "\ngroup %d: %s\n  %s\n  examples:", i+1, g.Rule, g.Explanation)
			for _, e := range g.Examples {
				fmt.Fprintf(stdout, " %s→%s", e.Input, e.Output)
			}
			fmt.Fprintln(stdout)
		}
		return fmt.Errorf("rewrite generate: no single rule fits (%d rules proposed above)", len(res.Groups))
	}
	fmt.Fprintf(stdout, "rule: %s\n%s\n\nother numbers:\n", res.Rule, res.Explanation)
	for _, s := range res.Samples {
		if s.Matched {
			fmt.Fprintf(stdout, "  %-20s → %s\n", s.Input, s.Output)
		} else {
			fmt.Fprintf(stdout, "  %-20s   unchanged (the rule does not match)\n", s.Input)
		}
	}
	return nil
}

// genRule is a generated rule as the CLI prints it, with the fields to save
// it by `sipward rewrite create`.
type genRule struct {
	Regex       bool   `json:"regex"`
	Match       string `json:"match"`
	Replacement string `json:"replacement"`
}

func (r genRule) String() string {
	return fmt.Sprintf("regex=%t match='%s' replacement='%s'", r.Regex, r.Match, r.Replacement)
}
