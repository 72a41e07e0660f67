// Package cluster keeps sipward's live limit state in Redis, so that limits
// hold across every edge node that shares it: an endpoint limited to 10
// channels gets 10 in total, not 10 per node. It also holds the cluster's
// location service (RedisLocation, location.go: every node's registrar
// bindings, each with its node), the signed hand-over of a call to the node
// a NAT-ed phone registered through (Deliveries, deliver.go); which nodes
// are up is package nodes' registry. RedisChannels and RedisRates
// implement limits.Channels and limits.Rates and pass the same conformance
// suite as the in-process versions (limits/limitstest).
//
// It also shares what guards the edge against guessing: RedisCounts (digest
// nonce counts), RedisFailures (the firewall's counts of failed
// authentications and unanswered challenges, firewall.SharedCounts),
// RedisLockouts (failed web sign-ins, signin.Lockouts) and RedisRevocations
// (signed-out web sessions, signin.Revocations).
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
//	<prefix>nc:<nonce>       string: a digest nonce's highest count.
//	<prefix>fail:<kind>:<ip> hash {s, n}: failures of a firewall kind
//	                         ("auth_failure", "unknown_source_invite") from
//	                         a source since s (µs), n of them.
//	<prefix>signin:u:<ip>|<username>, <prefix>signin:a:<ip>
//	                         hash {s, n, l}: failed sign-ins of a username
//	                         from an address, of an address; l is the end
//	                         of its lockout (µs).
//	<prefix>revoked:<sid>    string: a signed-out web session, until it
//	                         would have expired.
//	<prefix>loc:<username>   hash: contact → "<expiry-ms> <registered-µs>
//	                         <node> <binding JSON>", TTL the latest expiry
//	                         + LocationMargin (see RedisLocation).
//	<prefix>loc-users        set of the usernames with bindings.
//
// Acquire, Release, Refresh, Reap and Allow are each one Lua script, so each
// is atomic: an Acquire takes a channel of every key or of none, and two
// nodes racing for the last channel cannot both win.
//
// # Time
//
// The logic runs on the caller's clock: expiries and buckets are computed
// from the now passed in (so tests step time), never from Redis's clock.
// Node clocks must therefore agree to well within a lease (30 s by default) and a CPS
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
// The Redis types return every error (wrapped, "cluster: …"). sipward
// serve uses them through FallbackChannels and FallbackRates, which keep a
// node serving when Redis does not answer: Health marks Redis down at the
// first failed operation (each bounded to CallTimeout, 1 s) and the node then counts
// channels and CPS on its own — every limit holds per node, not per
// cluster, until Redis is back. Health pings Redis every 500 ms; when it
// answers, the holds of calls that ended meanwhile are freed in Redis and the channels taken node-locally by calls still up are copied
// into Redis (granted: their calls are up) before Redis is used again, so
// the cluster counts them. Nonce counts (RedisCounts) fall back to the
// node's table in the same way. /healthz reports the node "degraded" (HTTP
// 200, a load balancer keeps it) while this lasts and for a minute after.
//
// The guards against guessing fall back the same way: failure counts
// (RedisFailures), sign-in lockouts (RedisLockouts) and revocations
// (RedisRevocations) are also kept (or counted) on the node, which answers
// when Redis does not within CallTimeout, so that Redis going away never
// fails a call, a registration or a sign-in; it only makes the guard per
// node until Redis is back. While Health (UseHealth) says Redis is down,
// or for RetryAfter after a failed call without one, Redis is not tried at
// all (a flood of failures must not wait CallTimeout each); each type's
// Degraded(now) reports a fallback within DegradedFor.
//
// The shared location (RedisLocation) never fails a call or a registration
// either: the registrar falls back to the node's own bindings, and it
// reports Degraded(now) for a minute after a failure.
//
// # Deployment
//
// The scripts build the names of the keys a hold record lists, so they need
// a single Redis (or a Sentinel-managed primary), not Redis Cluster.
package cluster
