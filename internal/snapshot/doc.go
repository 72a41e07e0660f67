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
// changed, loads, builds and swaps. A build that fails leaves the old snapshot
// serving and is reported once per revision (log, [Watcher.LastError],
// [Watcher.Healthy]); a store that cannot be reached does the same. The API
// calls [Watcher.Refresh] after a change so that the change is in force on
// this node at once; other nodes see it at their next poll.
//
// Everything reachable from a Snapshot is read-only after Build: callers must
// not modify the structs, slices or maps they are handed.
//
// # Full rebuild
//
// Every change rebuilds the whole snapshot from a fresh Dataset. That is
// simple and obviously consistent, and fast enough for now: BenchmarkBuild
// (100k SIP users, 100k CIDR endpoints) takes about 0.15 s and keeps 58 MB;
// BenchmarkBuild1M (1M + 1M, the scale target) about 2 to 3.5 s on two cores
// and 610 MB. Applying a change incrementally (bart's InsertPersist,
// copy-on-write of the affected slices) is future work. While a rebuild runs,
// the old snapshot, the Dataset being compiled and the new snapshot are all
// live, so peak heap during a swap is about two snapshots plus one Dataset.
//
// # Memory layout
//
// Objects live in a few large slices rather than one heap object each: all
// IP endpoints in one slice (sends endpoints sorted by prefix, then receives
// endpoints grouped by account), users in one slice sorted by ID, DIDs in one
// slice grouped by account. An Account's Receives and DIDs are sub-slices of
// those. Lookups by ID go through a dense position table (a map when IDs are
// sparse). The CIDR table maps each distinct sends prefix to a node (a range
// of the endpoint slice and the index of the next enclosing prefix's node),
// so an identification is one table lookup and a walk up the parent links,
// with no allocation. Small repeated strings (tech prefixes, realms, forced
// From, CLI patterns) are interned; limits are int32; protocols, directions
// and NAT ping modes are one byte; a restricted codec set is a bitset.
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
