package apiserver

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// pods/exec, as upstream serves it: the API server checks the options,
// finds the pod's container and node, and proxies the client's upgraded
// connection (WebSocket with a v5/v4 channel protocol, or SPDY/3.1) to the
// node's kubelet at /exec/{namespace}/{pod}/{container}, authenticated
// with Config.KubeletClientTLS's client certificate. Upstream's API server
// translates WebSocket clients to SPDY for old kubelets; Skiff's kubelet
// speaks both, so the bytes pass through unchanged.

// execOptions are a pods/exec query.
type execOptions struct {
	container                  string
	command                    []string
	stdin, stdout, stderr, tty bool
}

// parseExecOptions reads PodExecOptions from a pods/exec query as the API
// machinery decodes them (booleans are true when present and neither "0"
// nor "false") and validates them as upstream does.
func parseExecOptions(q url.Values) (execOptions, error) {
	o, err := parseStreamOptions(q)
	if err == nil && len(o.command) == 0 {
		err = apierrors.NewBadRequest("you must specify at least one command for the container")
	}
	return o, err
}

// parseAttachOptions reads PodAttachOptions from a pods/attach query: the
// streams of pods/exec without a command.
func parseAttachOptions(q url.Values) (execOptions, error) {
	o, err := parseStreamOptions(q)
	o.command = nil
	return o, err
}

// parseStreamOptions reads the options pods/exec and pods/attach share.
func parseStreamOptions(q url.Values) (execOptions, error) {
	flag := func(name string) bool {
		vs, ok := q[name]
		return ok && len(vs) > 0 && vs[0] != "0" && !strings.EqualFold(vs[0], "false")
	}
	o := execOptions{
		container: q.Get("container"), command: q["command"],
		stdin: flag("stdin"), stdout: flag("stdout"), stderr: flag("stderr"), tty: flag("tty"),
	}
	if !o.stdin && !o.stdout && !o.stderr {
		return o, apierrors.NewBadRequest("you must specify at least 1 of stdin, stdout, stderr")
	}
	return o, nil
}

// kubeletExecURL is the kubelet's exec URL for the container, or its
// attach URL when o has no command.
func kubeletExecURL(node *corev1.Node, pod *corev1.Pod, container string, o execOptions) (*url.URL, error) {
	q := url.Values{}
	path := "/attach/"
	if len(o.command) > 0 {
		q["command"] = o.command
		path = "/exec/"
	}
	for name, on := range map[string]bool{"stdin": o.stdin, "stdout": o.stdout, "stderr": o.stderr, "tty": o.tty} {
		if on {
			q.Set(name, "1")
		}
	}
	return kubeletURL(node, path+url.PathEscape(pod.Namespace)+"/"+url.PathEscape(pod.Name)+"/"+url.PathEscape(container), q)
}

// podExec serves GET and POST pods/{name}/exec, and pods/{name}/attach
// when attach is set.
func (c *call) podExec(attach bool) error {
	if c.info.Verb != "get" && c.info.Verb != "create" {
		return apierrors.NewMethodNotSupported(c.ep.gr(), c.info.Verb)
	}
	parse := parseExecOptions
	if attach {
		parse = parseAttachOptions
	}
	opts, err := parse(c.r.URL.Query())
	if err != nil {
		return err
	}
	pod, err := c.addressedPod()
	if err != nil {
		return err
	}
	container, err := logContainer(pod, opts.container)
	if err != nil {
		return err
	}
	if pod.Spec.NodeName == "" {
		return apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name))
	}
	node, err := c.podNode(pod)
	if err != nil {
		return err
	}
	loc, err := kubeletExecURL(node, pod, container, opts)
	if err != nil {
		return err
	}
	return c.proxyUpgrade(node.Name, loc)
}

// proxyUpgrade proxies the client's request, an upgrade, to loc on a
// kubelet and splices both directions once the kubelet switches
// protocols. A kubelet's error answer becomes a Status as for pods/log.
func (c *call) proxyUpgrade(node string, loc *url.URL) error {
	if c.s.cfg.KubeletClientTLS == nil {
		return apierrors.NewServiceUnavailable("the API server has no client certificate for kubelets, so it cannot reach node " + strconv.Quote(node))
	}
	tlsCfg := c.s.cfg.KubeletClientTLS.Clone()
	if tlsCfg.RootCAs == nil {
		tlsCfg.InsecureSkipVerify = true
	}
	// HTTP/1.1 only: upgrades do not exist in HTTP/2.
	tlsCfg.NextProtos = nil
	tr := &http.Transport{
		Proxy:                 nil, // the kubelet is on the node network
		DialContext:           (&net.Dialer{Timeout: kubeletDialTimeout}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   kubeletTLSTimeout,
		ResponseHeaderTimeout: kubeletResponseTimeout,
		DisableKeepAlives:     true,
	}
	defer tr.CloseIdleConnections()
	var proxyErr error
	rp := &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = loc
			pr.Out.Host = loc.Host
			// The client's credentials are for the API server only.
			pr.Out.Header.Del("Authorization")
			pr.Out.Header.Del("Impersonate-User")
			pr.Out.Header.Del("Impersonate-Group")
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode == http.StatusSwitchingProtocols || (resp.StatusCode >= 200 && resp.StatusCode <= 299) {
				return nil
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, kubeletErrorLimit))
			return kubeletError(resp.StatusCode, c.info.Name, strings.TrimSpace(string(body)))
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var st apierrors.APIStatus
			if !errors.As(err, &st) {
				err = kubeletUnreachable(node, err)
			}
			proxyErr = err
			writeError(w, r, err)
		},
		ErrorLog: slog.NewLogLogger(c.s.log.Handler(), slog.LevelDebug),
	}
	rp.ServeHTTP(c.w, c.r.WithContext(c.ctx))
	if proxyErr != nil {
		c.s.log.Info("pod stream failed", "subresource", c.info.Subresource, "pod", c.info.Namespace+"/"+c.info.Name, "node", node, "err", proxyErr)
	}
	return nil
}
