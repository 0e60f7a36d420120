package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/docker-exporter/docker_exporter/internal/dockercli"
	"github.com/docker-exporter/docker_exporter/internal/exporterproc"
	"github.com/docker-exporter/docker_exporter/internal/scrape"
	"github.com/docker-exporter/docker_exporter/internal/testbed"
	"github.com/docker-exporter/docker_exporter/internal/testdaemon"
)

// TestWebConfigServesTLSWithBasicAuth runs the exporter with an
// exporter-toolkit web config: TLS with a certificate from a test CA, and
// basic auth. The daemon does not matter here, so there is none.
func TestWebConfigServesTLSWithBasicAuth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, certFile, keyFile := testCertificates(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	writeFile(t, webConfig, "tls_server_config:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+
		"\nbasic_auth_users:\n  prometheus: "+string(hash)+"\n")

	// The clients trust the test CA alone: a handshake that succeeds proves
	// the exporter serves that CA's certificate.
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	tlsTransport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	t.Cleanup(tlsTransport.CloseIdleConnections)
	anonymous := &http.Client{Timeout: 10 * time.Second, Transport: tlsTransport}
	authed := &http.Client{Timeout: 10 * time.Second, Transport: basicAuth{"prometheus", "s3cret", tlsTransport}}

	e := exporterproc.StartWith(t, exporterproc.Build(t, true), "https", authed,
		"--docker.host=unix:///nonexistent/docker.sock", "--web.config.file="+webConfig)
	body, err := e.Get()
	if err != nil {
		t.Fatalf("with credentials: %v", err)
	}
	if !bytes.Contains(body, []byte("docker_up 0")) {
		t.Errorf("with credentials the scrape lacks docker_up 0:\n%s", body)
	}

	status := func(c *http.Client) int {
		resp, err := c.Get(e.URL)
		if err != nil {
			t.Fatalf("GET %s: %v", e.URL, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(anonymous); got != http.StatusUnauthorized {
		t.Errorf("without credentials: %d, want 401", got)
	}
	wrong := &http.Client{Timeout: 10 * time.Second, Transport: basicAuth{"prometheus", "guess", tlsTransport}}
	if got := status(wrong); got != http.StatusUnauthorized {
		t.Errorf("with a wrong password: %d, want 401", got)
	}

	// A client that does not trust the test CA must fail the handshake.
	untrusting := &http.Transport{}
	t.Cleanup(untrusting.CloseIdleConnections)
	_, err = (&http.Client{Timeout: 10 * time.Second, Transport: untrusting}).Get(e.URL)
	var unknownAuthority x509.UnknownAuthorityError
	if !errors.As(err, &unknownAuthority) {
		t.Errorf("a client without the test CA: %v, want an unknown-authority error", err)
	}
	// Plain HTTP gets no metrics.
	plainURL := strings.Replace(e.URL, "https://", "http://", 1)
	if resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(plainURL); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP got 200 from the TLS listener")
		}
	}
}

type basicAuth struct {
	user, password string
	next           http.RoundTripper
}

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.password)
	return b.next.RoundTrip(r)
}

// testCertificates makes a CA and a server certificate for 127.0.0.1 signed
// by it, and writes the server's certificate and key as PEM files.
func testCertificates(t *testing.T, dir string) (ca *x509.Certificate, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "docker_exporter test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serverDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: serverDER})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	return ca, certFile, keyFile
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// readOnlyAPI is what a socket proxy in front of the daemon needs to allow:
// GET (and the client's HEAD ping) of these paths, nothing else.
var readOnlyAPI = regexp.MustCompile(`^(/_ping|/version|/info|/events|/containers/json|/containers/[^/]+/json)$`)

func allowReadOnly(method, path string) bool {
	return (method == http.MethodGet || method == http.MethodHead && path == "/_ping") && readOnlyAPI.MatchString(path)
}

// TestReadOnlyDaemonAccessIsEnough runs the exporter behind a proxy that
// lets through only GETs of the read-only endpoints, as a socket proxy
// would: everything works, and the exporter never asked for anything else.
func TestReadOnlyDaemonAccessIsEnough(t *testing.T) {
	t.Parallel()
	testdaemon.ForEachEngine(t, readOnlyDaemonAccessIsEnough)
}

func readOnlyDaemonAccessIsEnough(t *testing.T, eng testdaemon.Engine) {
	t.Parallel()
	b := testbed.Start(t, eng, testbed.WithProxy)
	d, img, p := b.Daemon, b.Image, b.Proxy
	p.AllowOnly(allowReadOnly)

	// The filter can fail: a write through it is refused.
	resp, err := unixClient(p.Socket).Post("http://docker/v1.41/containers/create", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST /containers/create through the read-only proxy: %d, want 403", resp.StatusCode)
	}

	dockercli.Run(t, d, "ro-running", img, "sleep", "1000")
	e := b.Exporter(t)
	e.WaitFor(t, "ro-running running", func(s *scrape.Scrape) bool {
		return s.Up() && s.InState("ro-running", "running")
	}, "docker_up", scrape.Named("ro-running"))

	dockercli.Run(t, d, "ro-health", "--health-cmd", "true", "--health-interval", "1s", img, "sleep", "1000")
	d.Docker(t, "kill", "ro-running")
	e.WaitFor(t, "the kill and the health check", func(s *scrape.Scrape) bool {
		return s.InState("ro-running", "exited") && s.Is(1, "docker_container_deaths_total", "name", "ro-running") &&
			s.Is(1, "docker_container_health_status", "name", "ro-health", "status", "healthy")
	}, scrape.Named("ro-running"), scrape.Named("ro-health"))

	if rejected := p.Rejected(); len(rejected) != 1 || rejected["POST /containers/create"] != 1 {
		t.Errorf("the proxy refused the exporter: %v (only the test's own POST is expected)", rejected)
	}
}

func unixClient(socket string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
}

// TestEnvironmentAndUnlistedLabelsAreNeverExported: a container's
// environment never reaches a scrape, and its labels only through the
// allowlist.
func TestEnvironmentAndUnlistedLabelsAreNeverExported(t *testing.T) {
	t.Parallel()
	testdaemon.ForEachEngine(t, environmentAndUnlistedLabelsAreNeverExported)
}

func environmentAndUnlistedLabelsAreNeverExported(t *testing.T, eng testdaemon.Engine) {
	t.Parallel()
	b := testbed.Start(t, eng)
	d, img := b.Daemon, b.Image
	const envSecret, labelSecret = "env-secret-6b1f", "label-secret-93d2"
	dockercli.Run(t, d, "secretive", "-e", "API_TOKEN="+envSecret,
		"--label", "com.example.secret="+labelSecret, "--label", "com.example.team=core", img, "sleep", "1000")

	listed := b.Exporter(t, "--container.labels=com.example.team")
	all := b.Exporter(t, "--container.labels=*")
	for _, e := range []*exporterproc.Exporter{listed, all} {
		e.WaitFor(t, "the container's labels", func(s *scrape.Scrape) bool {
			return s.Has("docker_container_labels", "name", "secretive", "label_com_example_team", "core")
		}, scrape.Named("secretive"))
	}
	check := func(e *exporterproc.Exporter, wantLabelSecret bool) {
		body, err := e.Get()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(body, []byte(envSecret)) {
			t.Errorf("%s: a scrape contains the container's environment", e.URL)
		}
		if got := bytes.Contains(body, []byte(labelSecret)); got != wantLabelSecret {
			t.Errorf("%s: the unlisted label's value in the scrape: %t, want %t", e.URL, got, wantLabelSecret)
		}
	}
	check(listed, false)
	// With "*" every label is exported, by the operator's choice; the
	// environment still is not.
	check(all, true)
}
