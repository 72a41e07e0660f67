// Package snapshot is the immutable, compiled form of sipward's configuration
// that the SIP hot path reads: accounts with their compiled CLI patterns and
// DIDs, IP endpoints in a CIDR table, SIP users by name, DIDs by number,
// compiled rewrite rules, restricted codecs, the routing core's addresses and
// the firewall bans. The hot path never queries the store.
//
// # Lifecycle
//
// [Load] reads a [Dataset] (every list of the store, in one read-only
// transaction, labelled with the revision read just before it). [Build]
// validates and compiles a Dataset into a [*Snapshot]; it returns an error
// naming the culprit (up to ten of them) and never a half-built snapshot.
// A [Holder] keeps the serving snapshot in an atomic pointer; a request loads
// it once, so it sees one configuration version from start to end.
// A [Watcher] polls the store's revision (every 200 ms by default) and, when it
// changed, applies the change to the serving snapshot, or else loads, builds
// and swaps (see below). A change that fails to build leaves the old snapshot
// serving and is reported once per revision (log, [Watcher.LastError],
// [Watcher.Healthy]); a store that cannot be reached does the same. The API
// calls [Watcher.Refresh] after a change so that the change is in force on
// this node at once; other nodes see it at their next poll.
//
// Everything reachable from a Snapshot is read-only once built: callers must
// not modify the structs, slices or maps they are handed.
//
// # Incremental apply
//
// The store logs which objects each committed write changed
// (store.Tx.ChangesSince). [LoadDelta] reads the log since the serving
// snapshot's revision and, in the same transaction, the current rows of the
// changed objects (a row not found: deleted), all the rewrite rules of each
// changed endpoint and user, and every ban when one changed. [Snapshot.Apply]
// returns a new snapshot with the changes; the old one is never modified and
// keeps serving the requests that hold it. Apply validates what it touches
// with Build's code and messages, and answers every lookup as Build of the
// whole store would; a differential test (TestApplyMatchesBuild) holds it to
// that.
//
// A snapshot is a base, compiled by Build, and an overlay: maps from ID,
// username and DID number to the objects Apply replaced since (nil: deleted),
// which lookups consult first when there is one. Apply copies the overlay's
// maps (copy on write), so its cost grows with the overlay. The CIDR table is
// replaced with bart's persistent insert and delete, which copy only the path
// to the prefixes that changed; each changed prefix that is not a single
// address is also noted (see Memory layout). Accounts, users and endpoints
// point at each other, so replacing an account replaces everything that points
// at it: its users and sends endpoints (found through an index built with the
// base), its receives endpoints and DIDs (held in the Account), and so does
// changing a SIP user that a DID routes to (the DID points at the user, and
// the account holds the DID). A change of the firewall bans rebuilds the ban
// table from all the bans.
//
// The Watcher falls back to a full Load and Build, which starts a new base
// with an empty overlay, when: there is no snapshot yet; the change log no
// longer reaches back (pruned, or older than the log); more than maxOverlay
// (20,000) objects changed, or the overlay would grow past it, or more than
// maxOverlay sends prefixes other than single addresses changed since the
// base; a change touches a username that several users hold (Build's rule
// decides who keeps it, see Realm below) or gives one to a second user; the
// node's Options changed. Each swap is logged at Debug, applied or rebuilt,
// with the time taken.
//
// At the scale target (1,000,000 SIP users and 1,000,000 CIDR endpoints in
// SQLite, on two cores) a change takes 0.2 to 0.4 ms from commit to serving,
// where a full rebuild takes about 22 s (BenchmarkApplyOneChange1M); Build
// alone takes 1.5 to 3 s and keeps about 640 MB (BenchmarkBuild1M). While a
// rebuild runs, the old snapshot, the Dataset being compiled and the new
// snapshot are all live, so peak heap during one is about two snapshots plus
// one Dataset.
//
// # Memory layout
//
// Objects of the base live in a few large slices rather than one heap object
// each: all IP endpoints in one slice (sends endpoints sorted by prefix, then
// receives endpoints grouped by account), users in one slice sorted by ID,
// DIDs in one slice grouped by account. An Account's Receives and DIDs are
// sub-slices of those. Lookups by ID go through a dense position table (a map
// when IDs are sparse). The CIDR table maps each distinct sends prefix to
// the slice of its endpoints (in the base, a sub-slice of the big one) and a
// link to the entry of the next enclosing prefix, so an identification is
// one table lookup and, when no endpoint at a level survives, a step up that
// link, with no allocation. Apply does not relink the entries under a prefix
// it changes (a /8 may hold a million): it notes the prefix, with its new
// entry, in a small table of its own that a step up consults when a noted
// prefix may hold the level's. Under a noted prefix the step takes the noted
// entry, or, when that prefix was removed, looks the enclosing prefix up.
// Small repeated strings (tech prefixes, realms, forced From, CLI patterns)
// are interned; limits are int32; protocols, directions and NAT ping modes are
// one byte; a restricted codec set is a bitset.
//
// # Realm
//
// The digest realm is per node (Options.Realm). Users are indexed by username
// alone, whatever their stored realm: a user whose Realm differs from
// Options.Realm is still found by [Snapshot.User] (the authn stage compares
// the realm). If two users share a username in different realms, the one in
// Options.Realm wins; otherwise the one with the lowest ID.
//
// # Numbers
//
// CLI authentication and CLI patterns compare numbers the way the provisioning
// layer stores DIDs: E.164 without a leading '+'. A leading '+' on the CLI and
// on an exact pattern is ignored. A regex pattern sees the CLI exactly as
// received and is anchored only as written ("^44" anchors, "44" matches
// anywhere).
package snapshot
