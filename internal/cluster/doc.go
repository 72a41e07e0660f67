// Package cluster keeps sipward's live limit state in Redis, so that limits
// hold across every edge node that shares it: an endpoint limited to 10
// channels gets 10 in total, not 10 per node. It also holds the cluster's
// location service (RedisLocation, location.go: every node's registrar
// bindings, each with its node), the signed hand-over of a call to the node
// a NAT-ed phone registered through (Deliveries, deliver.go), and Beacons
// (beacon.go), a minimal table of which nodes are up, standing in for the
// node registry. RedisChannels and RedisRates
// implement limits.Channels and limits.Rates and pass the same conformance
// suite as the in-process versions (limits/limitstest).
//
// # What lives in Redis
//
// Every key starts with the prefix given to the constructor (default
// DefaultPrefix, "sipward:"); <kind> is "endpoint", "sip_user" or "account"
// and <id> the store ID.
//
//	<prefix>ch:<kind>:<id>   sorted set: one member per call holding a
//	                         channel of that key (the Call-ID), scored by
//	                         the hold's expiry in Unix microseconds. Its
//	                         cardinality is the channels in use.
//	<prefix>hold:<call-id>   string "<expiry-µs> <kind>:<id> <kind>:<id>…":
//	                         what one call holds, so that Release frees
//	                         exactly that.
//	<prefix>ch-index         set of the "<kind>:<id>" that hold channels,
//	                         for All and Reap.
//	<prefix>cps:<kind>:<id>  string: the CPS bucket of a key, as a GCRA
//	                         theoretical arrival time in Unix microseconds.
//	<prefix>loc:<username>   hash: contact → "<expiry-ms> <registered-µs>
//	                         <node> <binding JSON>", TTL the latest expiry
//	                         + LocationMargin (see RedisLocation).
//	<prefix>loc-users        set of the usernames with bindings.
//	<prefix>loc-nodes        hash: node id → "<unix-ms> <sip-addr>" (Beacons).
//
// Acquire, Release, Refresh, Reap and Allow are each one Lua script, so each
// is atomic: an Acquire takes a channel of every key or of none, and two
// nodes racing for the last channel cannot both win.
//
// # Time
//
// The logic runs on the caller's clock: expiries and buckets are computed
// from the now passed in (so tests step time), never from Redis's clock.
// Node clocks must therefore agree to well within a lease (hours) and a CPS
// second; NTP does that. Redis TTLs are only garbage collection: every key
// is given one comfortably longer than the logical lifetime of what it
// holds (lease + GCMargin for channels, a second + CPSIdle for buckets), so
// the state of a key that nobody touches any more disappears by itself.
//
// A crashed node's holds are not released by anyone: they expire with their
// lease. Acquire ignores (and removes) expired holds on the keys it
// touches; Reap, run periodically by one or every node, removes the rest so
// that InUse and All follow.
//
// # When Redis is down
//
// RedisLocation and Beacons never fail a call or a registration: the
// registrar falls back to the node's own bindings, and both report
// Degraded(now) for a minute after a failure. For the limits:
// Every method returns the error (wrapped, "cluster: …"). The limits stage
// turns it into an error, so the edge answers a new call 503 and reports the
// state store as down in its health, rather than letting calls through
// unlimited. A Release that fails leaves the hold to its lease.
//
// # Deployment
//
// The scripts build the names of the keys a hold record lists, so they need
// a single Redis (or a Sentinel-managed primary), not Redis Cluster.
package cluster
