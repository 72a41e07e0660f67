package app

import (
	"net/http"
	"net/http/pprof"

	"github.com/sipward/sipward/internal/api"
)

// debugHandler serves Go's profiler (net/http/pprof) under /debug/pprof/ to
// operator tokens only: a CPU profile of the running edge under load is how
// a performance target that is missed gets explained (docs/performance.md):
//
//	curl -H "Authorization: Bearer $TOKEN" -o cpu.pprof "http://HOST/debug/pprof/profile?seconds=20"
//	go tool pprof -top bin/sipward cpu.pprof
//
// Profiling costs nothing until a profile is asked for.
func debugHandler(apiSrv *api.Server) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := apiSrv.Caller(r)
		switch {
		case err != nil:
			http.Error(w, "unauthorized: an operator bearer token is needed", http.StatusUnauthorized)
			return
		case !c.Operator:
			http.Error(w, "forbidden: this needs an operator token", http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	})
}
