package runtime

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
)

// servePprof serves Go profiles on addr (loopback only, checked by LoadConfig) for as
// long as the process lives. Off unless debug_pprof_addr is set.
func servePprof(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() {
		log.Info("profiles", "addr", addr)
		if err := http.ListenAndServe(addr, mux); err != nil {
			log.Warn("profiles listener stopped", "error", err.Error())
		}
	}()
}
