package provision

import (
	"context"
	"fmt"
	"regexp"

	"github.com/sipward/sipward/internal/paramrewrite"
	"github.com/sipward/sipward/internal/store"
)

var groupRef = regexp.MustCompile(`\$\{?([0-9]+)\}?`)

// ValidateRewrite checks a rule as saving it would (type, match,
// replacement, order), without an owner; the error names the field.
func ValidateRewrite(r store.RewriteRule) error { return validateRewrite(&r) }

func validateRewrite(r *store.RewriteRule) error {
	switch r.Type {
	case store.RewriteDestination, store.RewriteCLI:
	case "":
		return invalid("type", "is required (destination or cli)")
	default:
		return invalid("type", "%q: must be destination or cli", r.Type)
	}
	if err := checkText("replacement", r.Replacement, maxReplace); err != nil {
		return err
	}
	if r.Order < 0 || r.Order > 1_000_000 {
		return invalid("order", "%d: must be between 0 and 1000000", r.Order)
	}
	if !r.Regex {
		if r.Match == "" && r.Replacement == "" {
			return invalid("match", "is required")
		}
		if err := checkDialString("match", r.Match, maxPrefix); err != nil {
			return err
		}
		return checkDialString("replacement", r.Replacement, maxReplace)
	}
	re, err := checkRegex("match", r.Match)
	if err != nil {
		return err
	}
	for _, m := range groupRef.FindAllStringSubmatch(r.Replacement, -1) {
		n := 0
		for _, d := range m[1] {
			n = n*10 + int(d-'0')
			if n > 99 {
				break
			}
		}
		if n > re.NumSubexp() {
			return invalid("replacement", "%q refers to group $%d but the regex has %d groups", r.Replacement, n, re.NumSubexp())
		}
	}
	return nil
}

// owner checks that the caller may see the rule's owner.
func owner(ctx context.Context, tx store.Tx, c Caller, kind store.OwnerKind, id int64) error {
	switch kind {
	case store.OwnerEndpoint:
		_, err := getEndpoint(ctx, tx, c, id)
		return err
	case store.OwnerSIPUser:
		_, err := getSIPUser(ctx, tx, c, id)
		return err
	}
	return invalid("owner_kind", "%q: must be endpoint or sip_user", kind)
}

func getRewrite(ctx context.Context, tx store.Tx, c Caller, id int64) (store.RewriteRule, error) {
	r, err := tx.GetRewriteRule(ctx, id)
	if err != nil {
		return r, storeErr("rewrite rule", id, err)
	}
	if err := owner(ctx, tx, c, r.OwnerKind, r.OwnerID); err != nil {
		return store.RewriteRule{}, notFound("rewrite rule", id)
	}
	return r, nil
}

// ListRewriteRules lists an endpoint's or SIP user's rules in firing order.
func (s *Service) ListRewriteRules(ctx context.Context, c Caller, f store.RewriteFilter) (items []store.RewriteRule, total int, err error) {
	f.Page = page(f.Page)
	err = s.st.View(ctx, func(tx store.Tx) error {
		if err := owner(ctx, tx, c, f.OwnerKind, f.OwnerID); err != nil {
			return err
		}
		items, total, err = tx.ListRewriteRules(ctx, f)
		return err
	})
	return items, total, err
}

// GetRewriteRule returns one rule.
func (s *Service) GetRewriteRule(ctx context.Context, c Caller, id int64) (r store.RewriteRule, err error) {
	err = s.st.View(ctx, func(tx store.Tx) error {
		r, err = getRewrite(ctx, tx, c, id)
		return err
	})
	return r, err
}

// CreateRewriteRule adds a rule to r.OwnerKind/r.OwnerID.
func (s *Service) CreateRewriteRule(ctx context.Context, c Caller, r *store.RewriteRule) error {
	r.ID = 0
	if err := validateRewrite(r); err != nil {
		return err
	}
	return s.update(ctx, c, func(tx store.Tx) error {
		if err := owner(ctx, tx, c, r.OwnerKind, r.OwnerID); err != nil {
			return err
		}
		return storeErr("rewrite rule", 0, tx.CreateRewriteRule(ctx, r))
	})
}

// UpdateRewriteRule replaces a rule (its owner stays).
func (s *Service) UpdateRewriteRule(ctx context.Context, c Caller, r *store.RewriteRule) error {
	return s.update(ctx, c, func(tx store.Tx) error {
		old, err := getRewrite(ctx, tx, c, r.ID)
		if err != nil {
			return err
		}
		r.OwnerKind, r.OwnerID = old.OwnerKind, old.OwnerID
		if err := validateRewrite(r); err != nil {
			return err
		}
		return storeErr("rewrite rule", r.ID, tx.UpdateRewriteRule(ctx, r))
	})
}

// DeleteRewriteRule removes a rule.
func (s *Service) DeleteRewriteRule(ctx context.Context, c Caller, id int64) error {
	return s.update(ctx, c, func(tx store.Tx) error {
		if _, err := getRewrite(ctx, tx, c, id); err != nil {
			return err
		}
		return storeErr("rewrite rule", id, tx.DeleteRewriteRule(ctx, id))
	})
}

// RewriteTest is the answer to a test call of a rule set.
type RewriteTest struct {
	Input string            `json:"input"`
	Type  store.RewriteType `json:"type"`
	// DialPattern is the IP endpoint's dial pattern, applied to a dialled
	// number before the rules ("" for SIP users and CLIs); Dialled is the
	// number it gave the rules.
	DialPattern string `json:"dial_pattern,omitempty"`
	Dialled     string `json:"dialled,omitempty"`
	Output      string `json:"output"`
	Matched     bool   `json:"matched"`
	RuleID      int64  `json:"rule_id,omitempty"`
}

// TestRewrite runs input through what a call's number meets: an IP
// endpoint's dial pattern (destination only), then the owner's stored rules
// of type typ, with the same compiled forms calls use.
func (s *Service) TestRewrite(ctx context.Context, c Caller, kind store.OwnerKind, ownerID int64, typ store.RewriteType, input string) (RewriteTest, error) {
	res := RewriteTest{Input: input, Type: typ}
	if typ != store.RewriteDestination && typ != store.RewriteCLI {
		return res, invalid("type", "%q: must be destination or cli", typ)
	}
	if err := checkText("input", input, 64); err != nil {
		return res, err
	}
	var rules []store.RewriteRule
	dial := paramrewrite.DialAsIs
	err := s.st.View(ctx, func(tx store.Tx) error {
		if err := owner(ctx, tx, c, kind, ownerID); err != nil {
			return err
		}
		if kind == store.OwnerEndpoint && typ == store.RewriteDestination {
			e, err := tx.GetEndpoint(ctx, ownerID)
			if err != nil {
				return storeErr("ip endpoint", ownerID, err)
			}
			if dial, err = paramrewrite.ParseDialPattern(e.DialPattern); err != nil {
				return fmt.Errorf("ip endpoint %d: dial_pattern: %w", ownerID, err)
			}
			res.DialPattern = dial.String()
		}
		var err error
		rules, _, err = tx.ListRewriteRules(ctx, store.RewriteFilter{OwnerKind: kind, OwnerID: ownerID})
		return err
	})
	if err != nil {
		return res, err
	}
	rs, err := paramrewrite.Compile(rules)
	if err != nil {
		return res, err
	}
	in, _ := dial.Apply(input)
	if res.DialPattern != "" {
		res.Dialled = in
	}
	res.Output, res.RuleID, res.Matched = rs.Apply(typ, in)
	return res, nil
}
