// Package signin keeps the guards of the web UI's sign-in: failed sign-ins
// counted per username and address, and per address, that lock them out for
// a while (Lockouts, under a LockoutPolicy), and sessions that were signed
// out (Revocations). The in-memory versions here (LocalLockouts,
// LocalRevocations) guard one node; package cluster has the Redis ones,
// shared by every node, which fall back to these. Package web uses them.
package signin
