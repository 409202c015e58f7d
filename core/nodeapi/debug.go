package nodeapi

import (
	"net/http"
	"net/http/pprof"
)

// debugProfiles serves Go's profiles of the agent (/debug/pprof/...), as
// the kubelet's debugging handlers do: for who may use nodes/proxy on every
// node, since one agent serves many nodes.
func (s *Server) debugProfiles() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := userOf(r.Context())
		if s.authorize(w, r, nodeProxyAttributes(u, r, "")) {
			mux.ServeHTTP(w, r)
		}
	})
}
