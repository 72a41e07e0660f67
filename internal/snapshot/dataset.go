package snapshot

import (
	"context"
	"fmt"

	"github.com/sipward/sipward/internal/store"
)

// Dataset is everything Build compiles, as read from the store: one
// consistent read of every list, and the revision it was read at.
type Dataset struct {
	Revision    int64
	Accounts    []store.Account
	Endpoints   []store.IPEndpoint
	Users       []store.SIPUser
	CLIPatterns []store.CLIPattern
	DIDs        []store.DID
	Rewrites    []store.RewriteRule
	Bans        []store.Ban
}

// Load reads a Dataset from st in one read-only transaction. The revision is
// read just before the transaction: the data is at least that new, so a write
// that lands in between shows up as a newer revision at the next poll (and
// costs one extra build) rather than being missed.
func Load(ctx context.Context, st store.Store) (Dataset, error) {
	rev, err := st.Revision(ctx)
	if err != nil {
		return Dataset{}, fmt.Errorf("snapshot: load: %w", err)
	}
	ds := Dataset{Revision: rev}
	err = st.View(ctx, func(tx store.Tx) error {
		var err error
		if ds.Accounts, _, err = tx.ListAccounts(ctx, store.AccountFilter{}); err != nil {
			return fmt.Errorf("list accounts: %w", err)
		}
		if ds.Endpoints, _, err = tx.ListEndpoints(ctx, store.EndpointFilter{}); err != nil {
			return fmt.Errorf("list ip endpoints: %w", err)
		}
		if ds.Users, _, err = tx.ListSIPUsers(ctx, store.SIPUserFilter{}); err != nil {
			return fmt.Errorf("list sip users: %w", err)
		}
		if ds.CLIPatterns, _, err = tx.ListCLIPatterns(ctx, store.CLIPatternFilter{}); err != nil {
			return fmt.Errorf("list cli patterns: %w", err)
		}
		if ds.DIDs, _, err = tx.ListDIDs(ctx, store.DIDFilter{}); err != nil {
			return fmt.Errorf("list dids: %w", err)
		}
		if ds.Rewrites, _, err = tx.ListRewriteRules(ctx, store.RewriteFilter{}); err != nil {
			return fmt.Errorf("list rewrite rules: %w", err)
		}
		if ds.Bans, _, err = tx.ListBans(ctx, store.BanFilter{}); err != nil {
			return fmt.Errorf("list bans: %w", err)
		}
		return nil
	})
	if err != nil {
		return Dataset{}, fmt.Errorf("snapshot: load revision %d: %w", rev, err)
	}
	return ds, nil
}
