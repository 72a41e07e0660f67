package provision

import (
	"context"

	"github.com/sipward/sipward/internal/store"
)

// How the trail sees each kind of object, and the auditTx writes that note
// them. Object names are the API's kind names.

func ownAccount[T any](f func(*T) int64) func(context.Context, store.Tx, *T) *int64 {
	return func(_ context.Context, _ store.Tx, v *T) *int64 { return accountOf(f(v)) }
}

func ptrAccount[T any](f func(*T) *int64) func(context.Context, store.Tx, *T) *int64 {
	return func(_ context.Context, _ store.Tx, v *T) *int64 {
		if p := f(v); p != nil {
			return accountOf(*p)
		}
		return nil
	}
}

func noAccount[T any](context.Context, store.Tx, *T) *int64 { return nil }

var (
	accountKind = &kind[store.Account]{object: "account", get: store.Tx.GetAccount,
		id: func(v *store.Account) int64 { return v.ID }, account: ownAccount(func(v *store.Account) int64 { return v.ID })}
	endpointKind = &kind[store.IPEndpoint]{object: "ip_endpoint", get: store.Tx.GetEndpoint,
		id: func(v *store.IPEndpoint) int64 { return v.ID }, account: ownAccount(func(v *store.IPEndpoint) int64 { return v.AccountID }),
		secrets: func(v *store.IPEndpoint) map[string]string {
			return map[string]string{"password": string(v.PasswordSealed)}
		}}
	sipUserKind = &kind[store.SIPUser]{object: "sip_user", get: store.Tx.GetSIPUser,
		id: func(v *store.SIPUser) int64 { return v.ID }, account: ownAccount(func(v *store.SIPUser) int64 { return v.AccountID }),
		secrets: func(v *store.SIPUser) map[string]string {
			return map[string]string{"password": v.HA1MD5 + v.HA1SHA256, "voicemail.pin": v.Voicemail.PINHash}
		}}
	cliPatternKind = &kind[store.CLIPattern]{object: "cli_pattern", get: store.Tx.GetCLIPattern,
		id: func(v *store.CLIPattern) int64 { return v.ID }, account: ownAccount(func(v *store.CLIPattern) int64 { return v.AccountID })}
	didKind = &kind[store.DID]{object: "did", get: store.Tx.GetDID,
		id: func(v *store.DID) int64 { return v.ID }, account: ownAccount(func(v *store.DID) int64 { return v.AccountID })}
	rewriteKind = &kind[store.RewriteRule]{object: "rewrite_rule", get: store.Tx.GetRewriteRule,
		id: func(v *store.RewriteRule) int64 { return v.ID }, account: ruleAccount}
	profileKind = &kind[store.Profile]{object: "profile", get: store.Tx.GetProfile,
		id: func(v *store.Profile) int64 { return v.ID }, account: noAccount[store.Profile]}
	banKind = &kind[store.Ban]{object: "ban", get: store.Tx.GetBan, create: store.AuditBan, del: store.AuditUnban,
		id: func(v *store.Ban) int64 { return v.ID }, account: noAccount[store.Ban]}
	tokenKind = &kind[store.Token]{object: "token", get: store.Tx.GetToken,
		id: func(v *store.Token) int64 { return v.ID }, account: ptrAccount(func(v *store.Token) *int64 { return v.AccountID }),
		secrets: func(v *store.Token) map[string]string { return map[string]string{"token": v.Hash} }}
	loginKind = &kind[store.Login]{object: "login", get: store.Tx.GetLogin,
		id: func(v *store.Login) int64 { return v.ID }, account: ptrAccount(func(v *store.Login) *int64 { return v.AccountID }),
		secrets: func(v *store.Login) map[string]string { return map[string]string{"password": v.Hash} }}
)

// ruleAccount is the account of a rewrite rule's owner.
func ruleAccount(ctx context.Context, tx store.Tx, r *store.RewriteRule) *int64 {
	switch r.OwnerKind {
	case store.OwnerEndpoint:
		if e, err := tx.GetEndpoint(ctx, r.OwnerID); err == nil {
			return accountOf(e.AccountID)
		}
	case store.OwnerSIPUser:
		if u, err := tx.GetSIPUser(ctx, r.OwnerID); err == nil {
			return accountOf(u.AccountID)
		}
	}
	return nil
}

func (a *auditTx) CreateAccount(ctx context.Context, v *store.Account) error {
	return auditCreate(ctx, a, accountKind, v, a.Tx.CreateAccount)
}
func (a *auditTx) UpdateAccount(ctx context.Context, v *store.Account) error {
	return auditUpdate(ctx, a, accountKind, v, a.Tx.UpdateAccount)
}
func (a *auditTx) DeleteAccount(ctx context.Context, id int64) error {
	return auditDelete(ctx, a, accountKind, id, a.Tx.DeleteAccount)
}

func (a *auditTx) CreateEndpoint(ctx context.Context, v *store.IPEndpoint) error {
	return auditCreate(ctx, a, endpointKind, v, a.Tx.CreateEndpoint)
}
func (a *auditTx) UpdateEndpoint(ctx context.Context, v *store.IPEndpoint) error {
	return auditUpdate(ctx, a, endpointKind, v, a.Tx.UpdateEndpoint)
}
func (a *auditTx) DeleteEndpoint(ctx context.Context, id int64) error {
	return auditDelete(ctx, a, endpointKind, id, a.Tx.DeleteEndpoint)
}

func (a *auditTx) CreateSIPUser(ctx context.Context, v *store.SIPUser) error {
	return auditCreate(ctx, a, sipUserKind, v, a.Tx.CreateSIPUser)
}
func (a *auditTx) UpdateSIPUser(ctx context.Context, v *store.SIPUser) error {
	return auditUpdate(ctx, a, sipUserKind, v, a.Tx.UpdateSIPUser)
}
func (a *auditTx) DeleteSIPUser(ctx context.Context, id int64) error {
	return auditDelete(ctx, a, sipUserKind, id, a.Tx.DeleteSIPUser)
}

func (a *auditTx) CreateCLIPattern(ctx context.Context, v *store.CLIPattern) error {
	return auditCreate(ctx, a, cliPatternKind, v, a.Tx.CreateCLIPattern)
}
func (a *auditTx) UpdateCLIPattern(ctx context.Context, v *store.CLIPattern) error {
	return auditUpdate(ctx, a, cliPatternKind, v, a.Tx.UpdateCLIPattern)
}
func (a *auditTx) DeleteCLIPattern(ctx context.Context, id int64) error {
	return auditDelete(ctx, a, cliPatternKind, id, a.Tx.DeleteCLIPattern)
}

func (a *auditTx) CreateDID(ctx context.Context, v *store.DID) error {
	return auditCreate(ctx, a, didKind, v, a.Tx.CreateDID)
}
func (a *auditTx) UpdateDID(ctx context.Context, v *store.DID) error {
	return auditUpdate(ctx, a, didKind, v, a.Tx.UpdateDID)
}
func (a *auditTx) DeleteDID(ctx context.Context, id int64) error {
	return auditDelete(ctx, a, didKind, id, a.Tx.DeleteDID)
}

func (a *auditTx) CreateRewriteRule(ctx context.Context, v *store.RewriteRule) error {
	return auditCreate(ctx, a, rewriteKind, v, a.Tx.CreateRewriteRule)
}
func (a *auditTx) UpdateRewriteRule(ctx context.Context, v *store.RewriteRule) error {
	return auditUpdate(ctx, a, rewriteKind, v, a.Tx.UpdateRewriteRule)
}
func (a *auditTx) DeleteRewriteRule(ctx context.Context, id int64) error {
	return auditDelete(ctx, a, rewriteKind, id, a.Tx.DeleteRewriteRule)
}

func (a *auditTx) CreateProfile(ctx context.Context, v *store.Profile) error {
	return auditCreate(ctx, a, profileKind, v, a.Tx.CreateProfile)
}
func (a *auditTx) UpdateProfile(ctx context.Context, v *store.Profile) error {
	return auditUpdate(ctx, a, profileKind, v, a.Tx.UpdateProfile)
}
func (a *auditTx) DeleteProfile(ctx context.Context, id int64) error {
	return auditDelete(ctx, a, profileKind, id, a.Tx.DeleteProfile)
}

func (a *auditTx) CreateBan(ctx context.Context, v *store.Ban) error {
	return auditCreate(ctx, a, banKind, v, a.Tx.CreateBan)
}
func (a *auditTx) UpdateBan(ctx context.Context, v *store.Ban) error {
	return auditUpdate(ctx, a, banKind, v, a.Tx.UpdateBan)
}
func (a *auditTx) DeleteBan(ctx context.Context, id int64) error {
	return auditDelete(ctx, a, banKind, id, a.Tx.DeleteBan)
}

func (a *auditTx) CreateToken(ctx context.Context, v *store.Token) error {
	return auditCreate(ctx, a, tokenKind, v, a.Tx.CreateToken)
}
func (a *auditTx) UpdateToken(ctx context.Context, v *store.Token) error {
	return auditUpdate(ctx, a, tokenKind, v, a.Tx.UpdateToken)
}
func (a *auditTx) DeleteToken(ctx context.Context, id int64) error {
	return auditDelete(ctx, a, tokenKind, id, a.Tx.DeleteToken)
}

func (a *auditTx) CreateLogin(ctx context.Context, v *store.Login) error {
	return auditCreate(ctx, a, loginKind, v, a.Tx.CreateLogin)
}
func (a *auditTx) UpdateLogin(ctx context.Context, v *store.Login) error {
	return auditUpdate(ctx, a, loginKind, v, a.Tx.UpdateLogin)
}
func (a *auditTx) DeleteLogin(ctx context.Context, id int64) error {
	return auditDelete(ctx, a, loginKind, id, a.Tx.DeleteLogin)
}
