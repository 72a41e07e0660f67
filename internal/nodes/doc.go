// Package nodes knows the sipward nodes of a cluster — the processes that
// share one store and one Redis — and merges their live views.
//
// # Identity
//
// A node's ID is its host name, a dash and six random hex digits
// (NewID), made once per process: two nodes on one host differ, and a
// restarted node is a new node. Its address is where its SIP UDP listener is
// reached (--external-host, or the listen IP, with the bound port), and it
// advertises the address of its HTTP listener for node-to-node requests.
//
// # Registry
//
// Every Interval (5 s) a node writes its record — identity, version, start,
// active calls, registrations, load — to Redis and reads everyone's, in one
// round trip (a Lua script), and keeps what it read in memory. Nodes, Node
// and Peers answer from that memory: no Redis round trip per request.
// A node whose last heartbeat is older than DownAfter (15 s) is down; one
// that shut down says so in a last write and is down at once. Records of
// nodes unseen for Forget (1 h) disappear. Keys, under the configured prefix:
//
//	<prefix>nodes        sorted set of node IDs scored by their last
//	                     heartbeat (Unix ms); members older than Forget
//	                     are trimmed at each heartbeat
//	<prefix>node:<id>    string: the node's record (JSON), TTL Forget
//
// Without Redis a node knows only itself. When Redis does not answer within
// 250 ms the node keeps serving and lists itself and the others as last
// seen (so they turn down after DownAfter); Degraded reports it. Times come
// from the callers' clocks (nodes need NTP, as for the limits in package
// cluster); the script builds key names, so it needs a single Redis, not
// Redis Cluster.
//
// Load is the CPU time (user and system) the process used over the last
// heartbeat interval divided by the interval and the number of cores it may
// use: 0 is idle, 1 is every core busy.
//
// # Merged views
//
// Views answers the calls and decisions of every up node: its own rows, and
// each up peer's, asked for over HTTP (PeerPath) with the same filters and a
// short timeout. A peer that does not answer is left out and named. Rows
// carry the ID of the node they come from. Node-to-node requests are signed
// (HMAC-SHA256 under a key derived from the store's nonce secret, which
// every node of the cluster shares, over the node ID, a timestamp, the
// method and the URI; 30 s validity), never with an API token.
//
// The dashboard's series (package series) are merged the same way
// (series.go): each node answers its partial view for the asking node's
// query and time, the asking node sums them.
package nodes
