package provision

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/sipward/sipward/internal/paramrewrite"
	"github.com/sipward/sipward/internal/store"
)

// validateEndpoint checks and canonicalises an IP endpoint's fields and
// reports every wrong one. It returns the endpoint's prefix (invalid for
// an FQDN).
func validateEndpoint(e *store.IPEndpoint) (netip.Prefix, error) {
	var l errList
	switch e.Direction {
	case "":
		e.Direction = store.DirSends
	case store.DirSends, store.DirReceives:
	default:
		l.add(invalid("direction", "%q: must be sends or receives", e.Direction))
	}
	if e.Direction == store.DirSends && (e.Username != "" || e.Password != "") {
		l.add(invalid("username", "egress credentials answer the challenges of an endpoint that receives calls (direction receives); "+
			"leave username and password empty on a sending endpoint"))
	}
	p, err := checkEndpointAddress(e)
	l.add(err)
	l.add(checkMediaRelay("media_relay", &e.MediaRelay))
	l.add(checkProtocol("protocol", &e.Protocol))
	checkEndpointPort(&l, e)
	l.add(checkLimit("channels", e.Channels))
	l.add(checkLimit("cps", e.CPS))
	l.add(checkSessionExpires("session_expires", &e.SessionExpires))
	if e.ForceNAT && e.DisableNAT {
		l.add(invalid("disable_nat", "cannot be set with force_nat: force_nat always uses the source address, disable_nat never does"))
	}
	if dial, err := paramrewrite.ParseDialPattern(e.DialPattern); err != nil {
		l.add(invalid("dial_pattern", "%v", err))
	} else {
		e.DialPattern = dial.String()
	}
	checkEndpointTexts(&l, e)
	l.add(checkHostPort("outbound_proxy", e.OutboundProxy))
	l.add(checkCodecs("restricted_codecs", &e.RestrictedCodecs))
	return p, l.err()
}

// checkEndpointAddress canonicalises an endpoint's address: an IP or CIDR,
// or for a receives endpoint an FQDN.
func checkEndpointAddress(e *store.IPEndpoint) (netip.Prefix, error) {
	addr := strings.TrimSpace(e.Address)
	if addr == "" {
		return netip.Prefix{}, invalid("address", "is required")
	}
	pp, canon, err := parsePrefix("address", addr)
	switch {
	case err == nil:
		e.Address = canon
		return pp, nil
	case !isFQDN(addr):
		return netip.Prefix{}, err
	case e.Direction != store.DirReceives:
		return netip.Prefix{}, invalid("address", "%q: an FQDN is only allowed for direction receives (calls are authenticated by source address)", addr)
	}
	e.Address = strings.ToLower(strings.TrimSuffix(addr, "."))
	return netip.Prefix{}, nil
}

// checkEndpointPort defaults the port by protocol and bounds it.
func checkEndpointPort(l *errList, e *store.IPEndpoint) {
	if e.Port == 0 {
		e.Port = 5060
		if e.Protocol == store.ProtoTLS || e.Protocol == store.ProtoTLSSRTP {
			e.Port = 5061
		}
	}
	if e.Port < 1 || e.Port > 65535 {
		l.add(invalid("port", "%d: must be between 1 and 65535", e.Port))
	}
}

// checkEndpointTexts checks the free-text, prefix and credential fields.
func checkEndpointTexts(l *errList, e *store.IPEndpoint) {
	for _, f := range []struct {
		name, v string
		max     int
	}{{"manufacturer", e.Manufacturer, maxName}, {"version", e.Version, maxName}, {"username", e.Username, maxUsername}} {
		l.add(checkText(f.name, f.v, f.max))
	}
	l.add(checkDialString("tech_prefix", e.TechPrefix, maxPrefix))
	l.add(checkDialString("cli_prefix", e.CLIPrefix, maxPrefix))
	l.add(checkDialString("force_from", e.ForceFrom, 32))
	if e.Password == "" {
		return
	}
	if len(e.Password) > maxPassword || strings.ContainsAny(e.Password, "\r\n\x00") {
		l.add(invalid("password", "must be at most %d characters without line breaks", maxPassword))
	}
	if e.Username == "" {
		l.add(invalid("username", "is required when a password is given"))
	}
}

// checkOverlap compares a sends endpoint with every other sends endpoint.
// Identical addresses that nothing tells apart (same tech prefix, not both
// using CLI authentication) are refused naming the other account; any other
// overlap with another account is a "duplicate IP" warning.
func checkOverlap(ctx context.Context, tx store.Tx, e *store.IPEndpoint, p netip.Prefix) ([]Warning, error) {
	others, _, err := tx.ListEndpoints(ctx, store.EndpointFilter{Direction: store.DirSends})
	if err != nil {
		return nil, err
	}
	var warns []Warning
	for _, o := range others {
		if o.ID == e.ID {
			continue
		}
		q, err := ParsePrefix(o.Address)
		if err != nil || !q.Overlaps(p) {
			continue
		}
		name := accountName(ctx, tx, o.AccountID)
		if q == p && o.TechPrefix == e.TechPrefix && !(o.CLIAuth && e.CLIAuth) {
			if o.AccountID == e.AccountID {
				return nil, conflict("duplicate_endpoint", "address",
					fmt.Sprintf("%s is already IP endpoint %d of this account with the same tech prefix", e.Address, o.ID))
			}
			return nil, conflict("ambiguous_ip", "address", fmt.Sprintf(
				"%s is already used by account %q (id %d) and nothing tells the two apart: give one a different tech prefix, or enable CLI authentication on both",
				e.Address, name, o.AccountID))
		}
		if o.AccountID != e.AccountID {
			warns = append(warns, Warning{Code: "duplicate_ip", Field: "address", Message: fmt.Sprintf(
				"duplicate IP: %s overlaps %s of account %q (id %d)", e.Address, o.Address, name, o.AccountID)})
		}
	}
	return warns, nil
}

func accountName(ctx context.Context, tx store.Tx, id int64) string {
	a, err := tx.GetAccount(ctx, id)
	if err != nil {
		return fmt.Sprintf("#%d", id)
	}
	return a.Name
}

// liftBans deletes firewall bans on any address of p: adding an IP endpoint
// trusts its addresses at once.
func liftBans(ctx context.Context, tx store.Tx, p netip.Prefix) error {
	bans, _, err := tx.ListBans(ctx, store.BanFilter{})
	if err != nil {
		return err
	}
	for _, b := range bans {
		q, err := ParsePrefix(b.Address)
		if err == nil && q.Overlaps(p) {
			if err := tx.DeleteBan(ctx, b.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Service) createEndpoint(ctx context.Context, tx store.Tx, e *store.IPEndpoint) ([]Warning, error) {
	e.ID = 0
	p, err := validateEndpoint(e)
	if err != nil {
		return nil, err
	}
	warns, err := s.saveEndpoint(ctx, tx, e, p, nil)
	if err != nil {
		return nil, err
	}
	return warns, storeErr("ip endpoint", 0, tx.CreateEndpoint(ctx, e))
}

// saveEndpoint runs the cross-object rules and seals the egress password.
func (s *Service) saveEndpoint(ctx context.Context, tx store.Tx, e *store.IPEndpoint, p netip.Prefix, old *store.IPEndpoint) ([]Warning, error) {
	var warns []Warning
	if e.Direction == store.DirSends && p.IsValid() {
		w, err := checkOverlap(ctx, tx, e, p)
		if err != nil {
			return nil, err
		}
		warns = append(warns, w...)
		if err := liftBans(ctx, tx, p); err != nil {
			return nil, err
		}
	}
	switch {
	case e.Password != "":
		sealed, err := s.sealer.Seal(e.Password)
		if err != nil {
			return nil, err
		}
		e.PasswordSealed = sealed
	case old != nil && e.Username != "":
		e.PasswordSealed = old.PasswordSealed
	default:
		e.PasswordSealed = nil
	}
	e.Password = ""
	e.PasswordSet = len(e.PasswordSealed) > 0
	return warns, nil
}

// ListEndpoints lists IP endpoints; an account caller sees only its own.
func (s *Service) ListEndpoints(ctx context.Context, c Caller, f store.EndpointFilter) (items []store.IPEndpoint, total int, err error) {
	f.Page = page(f.Page)
	if !c.Operator {
		if f.AccountID != 0 && f.AccountID != c.AccountID {
			return []store.IPEndpoint{}, 0, nil
		}
		f.AccountID = c.AccountID
	}
	err = s.st.View(ctx, func(tx store.Tx) error {
		items, total, err = tx.ListEndpoints(ctx, f)
		return err
	})
	return items, total, err
}

// GetEndpoint returns one IP endpoint.
func (s *Service) GetEndpoint(ctx context.Context, c Caller, id int64) (e store.IPEndpoint, err error) {
	err = s.st.View(ctx, func(tx store.Tx) error {
		e, err = getEndpoint(ctx, tx, c, id)
		return err
	})
	return e, err
}

func getEndpoint(ctx context.Context, tx store.Tx, c Caller, id int64) (store.IPEndpoint, error) {
	e, err := tx.GetEndpoint(ctx, id)
	if err != nil {
		return e, storeErr("ip endpoint", id, err)
	}
	if !c.sees(e.AccountID) {
		return store.IPEndpoint{}, notFound("ip endpoint", id)
	}
	return e, nil
}

// CreateEndpoint adds an IP endpoint to account e.AccountID.
func (s *Service) CreateEndpoint(ctx context.Context, c Caller, e *store.IPEndpoint) (warns []Warning, err error) {
	err = s.update(ctx, c, func(tx store.Tx) error {
		if _, err := s.account(ctx, tx, c, e.AccountID); err != nil {
			return err
		}
		warns, err = s.createEndpoint(ctx, tx, e)
		return err
	})
	return warns, err
}

// UpdateEndpoint replaces an IP endpoint's fields. An empty Password keeps
// the stored one (an empty Username clears both).
func (s *Service) UpdateEndpoint(ctx context.Context, c Caller, e *store.IPEndpoint) (warns []Warning, err error) {
	err = s.update(ctx, c, func(tx store.Tx) error {
		old, err := getEndpoint(ctx, tx, c, e.ID)
		if err != nil {
			return err
		}
		e.AccountID, e.CreatedAt = old.AccountID, old.CreatedAt
		p, err := validateEndpoint(e)
		if err != nil {
			return err
		}
		warns, err = s.saveEndpoint(ctx, tx, e, p, &old)
		if err != nil {
			return err
		}
		return storeErr("ip endpoint", e.ID, tx.UpdateEndpoint(ctx, e))
	})
	return warns, err
}

// DeleteEndpoint removes an IP endpoint and its rewrite rules.
func (s *Service) DeleteEndpoint(ctx context.Context, c Caller, id int64) error {
	return s.update(ctx, c, func(tx store.Tx) error {
		if _, err := getEndpoint(ctx, tx, c, id); err != nil {
			return err
		}
		return storeErr("ip endpoint", id, tx.DeleteEndpoint(ctx, id))
	})
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
