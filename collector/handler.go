package collector

import (
	"bufio"
	"compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// HandlerOpts tunes the metrics handler.
type HandlerOpts struct {
	// Extra is gathered after the exposition on every scrape: the build
	// info and the process's own go_ and process_ metrics. May be nil.
	Extra prometheus.Gatherer
	// ErrorLog receives the errors of gathering Extra; a scrape still
	// serves what could be gathered.
	ErrorLog *slog.Logger
	// MaxRequestsInFlight limits parallel scrapes; past it a scrape gets a
	// 503. 0 is no limit.
	MaxRequestsInFlight int
}

var textFormat = expfmt.NewFormat(expfmt.TypeTextPlain)

// Handler serves x and then opts.Extra in the text format, gzipped when
// the scraper accepts it (Prometheus does).
func Handler(x *Exposition, opts HandlerOpts) http.Handler {
	h := &handler{x: x, opts: opts}
	if opts.MaxRequestsInFlight > 0 {
		h.inFlight = make(chan struct{}, opts.MaxRequestsInFlight)
	}
	if h.opts.ErrorLog == nil {
		h.opts.ErrorLog = slog.New(slog.DiscardHandler)
	}
	return h
}

type handler struct {
	x        *Exposition
	opts     HandlerOpts
	inFlight chan struct{}
}

var gzipWriters = sync.Pool{New: func() any {
	// BestSpeed: a scrape of 10,000 containers is megabytes of very
	// repetitive text; the fastest level already shrinks it ~20 times.
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.inFlight != nil {
		select {
		case h.inFlight <- struct{}{}:
			defer func() { <-h.inFlight }()
		default:
			http.Error(w, "too many concurrent scrapes", http.StatusServiceUnavailable)
			return
		}
	}
	header := w.Header()
	header.Set("Content-Type", string(textFormat))
	header.Add("Vary", "Accept-Encoding")
	var out io.Writer = w
	if acceptsGzip(r) {
		header.Set("Content-Encoding", "gzip")
		gz := gzipWriters.Get().(*gzip.Writer)
		gz.Reset(w)
		defer func() {
			_ = gz.Close()
			gzipWriters.Put(gz)
		}()
		out = gz
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	if _, err := h.x.WriteTo(bw); err != nil {
		return // the scraper went away
	}
	if h.opts.Extra != nil {
		mfs, err := h.opts.Extra.Gather()
		if err != nil {
			h.opts.ErrorLog.Error("gathering the exporter's own metrics", "err", err)
		}
		enc := expfmt.NewEncoder(bw, textFormat)
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				h.opts.ErrorLog.Error("encoding the exporter's own metrics", "metric", mf.GetName(), "err", err)
			}
		}
	}
	_ = bw.Flush()
}

// acceptsGzip reads Accept-Encoding: gzip, unless given a weight of 0.
func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		_, q, found := strings.Cut(strings.ReplaceAll(params, " ", ""), "q=")
		if !found {
			return true
		}
		weight, err := strconv.ParseFloat(q, 64)
		return err == nil && weight > 0
	}
	return false
}
