package provision

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sipward/sipward/internal/store"
)

// AuditObjects are the object names the audit trail uses (the API's kinds).
var AuditObjects = []string{"account", "ip_endpoint", "sip_user", "cli_pattern", "did", "rewrite_rule", "profile", "token", "login", "ban",
	"voicemail_message", "voicemail_greeting"}

// AuditActions are the actions the audit trail records.
var AuditActions = []string{store.AuditCreate, store.AuditUpdate, store.AuditDelete, store.AuditResetPassword,
	store.AuditResetPIN, store.AuditBan, store.AuditUnban}

// ParseAuditFilter reads the audit trail's filter parameters through get
// (a URL query's or a form's Get): object ("ip_endpoint" or "ip_endpoint:12"), account,
// actor, action, since and until (RFC 3339, or a duration back from now
// such as 24h). Errors name the parameter.
func ParseAuditFilter(get func(string) string, now time.Time) (store.AuditFilter, error) {
	var f store.AuditFilter
	if v := strings.TrimSpace(get("object")); v != "" {
		kind, id, hasID := strings.Cut(v, ":")
		if !slices.Contains(AuditObjects, kind) {
			return f, invalid("object", "%q: must be one of %s, optionally with :<id>", kind, strings.Join(AuditObjects, ", "))
		}
		f.Object = kind
		if hasID {
			n, err := strconv.ParseInt(id, 10, 64)
			if err != nil || n <= 0 {
				return f, invalid("object", "%q: the id after %s: must be a positive number", id, kind)
			}
			f.ObjectID = n
		}
	}
	if v := strings.TrimSpace(get("account")); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return f, invalid("account", "%q: must be an account ID", v)
		}
		f.AccountID = n
	}
	f.Actor = strings.TrimSpace(get("actor"))
	if v := strings.TrimSpace(get("action")); v != "" {
		if !slices.Contains(AuditActions, v) {
			return f, invalid("action", "%q: must be one of %s", v, strings.Join(AuditActions, ", "))
		}
		f.Action = v
	}
	var err error
	if f.Since, err = auditTime("since", get("since"), now); err != nil {
		return f, err
	}
	if f.Until, err = auditTime("until", get("until"), now); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, invalid("until", "must be after since")
	}
	return f, nil
}

func auditTime(field, v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, invalid(field, "%q: must be a time such as 2026-12-07T20:00:00Z or a duration back from now such as 24h", v)
}
