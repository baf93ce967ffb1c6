package apiserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// pods/log, as upstream serves it: the API server finds the pod, its
// container and its node, and streams the answer of the node's kubelet
// (GET https://<node InternalIP>:<kubelet port>/containerLogs/...) back to
// the client, authenticated to the kubelet with Config.KubeletClientTLS's
// client certificate. Like upstream's kube-apiserver without
// --kubelet-certificate-authority, it does not verify the kubelet's
// serving certificate unless KubeletClientTLS carries RootCAs.

// Bounds of the connection to a kubelet: a node without a kubelet server
// (a simulated one) must fail fast rather than hang the client.
const (
	kubeletDialTimeout     = 5 * time.Second
	kubeletTLSTimeout      = 5 * time.Second
	kubeletResponseTimeout = 60 * time.Second
	// defaultKubeletPort is used for nodes that publish no kubelet port.
	defaultKubeletPort = 10250
	// kubeletErrorLimit bounds how much of a kubelet's error answer is read.
	kubeletErrorLimit = 4096
	// defaultContainerAnnotation names a pod's default container for
	// kubectl logs and exec.
	defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"
)

// podLog serves GET pods/{name}/log.
func (c *call) podLog() error {
	if c.info.Verb != "get" {
		return apierrors.NewMethodNotSupported(c.ep.gr(), c.info.Verb)
	}
	opts, err := parsePodLogOptions(c.r.URL.Query())
	if err != nil {
		return err
	}
	if errs := validatePodLogOptions(opts); len(errs) > 0 {
		return apierrors.NewInvalid(schema.GroupKind{Kind: "PodLogOptions"}, c.info.Name, errs)
	}
	pod, err := c.addressedPod()
	if err != nil {
		return err
	}
	container, err := logContainer(pod, opts.Container)
	if err != nil {
		return err
	}
	if pod.Spec.NodeName == "" {
		// As upstream: a pod not yet scheduled has an empty log.
		c.w.Header().Set("Content-Type", "text/plain")
		c.w.WriteHeader(http.StatusOK)
		return nil
	}
	node, err := c.podNode(pod)
	if err != nil {
		return err
	}
	loc, err := kubeletLogURL(node, pod, container, opts)
	if err != nil {
		return err
	}
	return c.streamFromKubelet(node.Name, loc, opts)
}

// parsePodLogOptions reads PodLogOptions from a pods/log query as the API
// machinery decodes them: booleans are true when present and neither "0"
// nor "false"; numbers that do not parse are a 400.
func parsePodLogOptions(q url.Values) (*corev1.PodLogOptions, error) {
	o := &corev1.PodLogOptions{Container: q.Get("container")}
	for name, dst := range map[string]*bool{
		"follow": &o.Follow, "previous": &o.Previous, "timestamps": &o.Timestamps,
		"insecureSkipTLSVerifyBackend": &o.InsecureSkipTLSVerifyBackend,
	} {
		if vs, ok := q[name]; ok && len(vs) > 0 {
			*dst = vs[0] != "0" && !strings.EqualFold(vs[0], "false")
		}
	}
	for name, dst := range map[string]**int64{
		"sinceSeconds": &o.SinceSeconds, "tailLines": &o.TailLines, "limitBytes": &o.LimitBytes,
	} {
		s := q.Get(name)
		if s == "" {
			continue
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("%s: %v", name, err))
		}
		*dst = &v
	}
	if s := q.Get("sinceTime"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("sinceTime: %v", err))
		}
		mt := metav1.NewTime(t)
		o.SinceTime = &mt
	}
	return o, nil
}

// validatePodLogOptions checks the options as upstream's validation does.
func validatePodLogOptions(o *corev1.PodLogOptions) field.ErrorList {
	var errs field.ErrorList
	if o.TailLines != nil && *o.TailLines < 0 {
		errs = append(errs, field.Invalid(field.NewPath("tailLines"), *o.TailLines, "must be greater than or equal to 0"))
	}
	if o.LimitBytes != nil && *o.LimitBytes < 1 {
		errs = append(errs, field.Invalid(field.NewPath("limitBytes"), *o.LimitBytes, "must be greater than 0"))
	}
	switch {
	case o.SinceSeconds != nil && o.SinceTime != nil:
		errs = append(errs, field.Forbidden(field.NewPath("sinceSeconds"), "at most one of `sinceTime` or `sinceSeconds` may be specified"))
	case o.SinceSeconds != nil && *o.SinceSeconds < 1:
		errs = append(errs, field.Invalid(field.NewPath("sinceSeconds"), *o.SinceSeconds, "must be greater than 0"))
	}
	return errs
}

// logContainer picks the container whose log is asked for: the one named,
// which must be in the pod; else the pod's only container, or the one its
// kubectl.kubernetes.io/default-container annotation names.
func logContainer(pod *corev1.Pod, name string) (string, error) {
	var all []string
	for _, c := range pod.Spec.InitContainers {
		all = append(all, c.Name)
	}
	for _, c := range pod.Spec.Containers {
		all = append(all, c.Name)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		all = append(all, c.Name)
	}
	has := func(n string) bool {
		for _, a := range all {
			if a == n {
				return true
			}
		}
		return false
	}
	if name != "" {
		if !has(name) {
			return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
		}
		return name, nil
	}
	if d := pod.Annotations[defaultContainerAnnotation]; d != "" && has(d) {
		return d, nil
	}
	switch len(pod.Spec.Containers) {
	case 1:
		return pod.Spec.Containers[0].Name, nil
	case 0:
		return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s", pod.Name))
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %s", pod.Name, all))
}

// kubeletLogURL is the kubelet's containerLogs URL for the container,
// with the options the kubelet acts on.
func kubeletLogURL(node *corev1.Node, pod *corev1.Pod, container string, o *corev1.PodLogOptions) (*url.URL, error) {
	q := url.Values{}
	if o.Follow {
		q.Set("follow", "true")
	}
	if o.Previous {
		q.Set("previous", "true")
	}
	if o.Timestamps {
		q.Set("timestamps", "true")
	}
	if o.SinceSeconds != nil {
		q.Set("sinceSeconds", strconv.FormatInt(*o.SinceSeconds, 10))
	}
	if o.SinceTime != nil {
		q.Set("sinceTime", o.SinceTime.UTC().Format(time.RFC3339))
	}
	if o.TailLines != nil {
		q.Set("tailLines", strconv.FormatInt(*o.TailLines, 10))
	}
	if o.LimitBytes != nil {
		q.Set("limitBytes", strconv.FormatInt(*o.LimitBytes, 10))
	}
	return kubeletURL(node, "/containerLogs/"+url.PathEscape(pod.Namespace)+"/"+url.PathEscape(pod.Name)+"/"+url.PathEscape(container), q)
}

// addressedPod reads the pod a pods/* subresource request names.
func (c *call) addressedPod() (*corev1.Pod, error) {
	obj, err := c.ep.store.GetObject(c.ctx, c.info.Namespace, c.info.Name, "")
	if err != nil {
		return nil, err
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("pods store holds %T", obj))
	}
	return pod, nil
}

// podNode reads the Node a scheduled pod is bound to.
func (c *call) podNode(pod *corev1.Pod) (*corev1.Node, error) {
	nodes := c.s.storages[schema.GroupResource{Resource: "nodes"}]
	obj, err := nodes.GetObject(c.ctx, "", pod.Spec.NodeName, "")
	if err != nil {
		return nil, err
	}
	node, ok := obj.(*corev1.Node)
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("nodes store holds %T", obj))
	}
	return node, nil
}

// kubeletURL is the URL of path with query q on the node's kubelet: its
// preferred address and published port (10250 when none).
func kubeletURL(node *corev1.Node, path string, q url.Values) (*url.URL, error) {
	host := nodeAddress(node)
	if host == "" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("node %q has no address to reach its kubelet at", node.Name))
	}
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port <= 0 {
		port = defaultKubeletPort
	}
	return &url.URL{Scheme: "https", Host: net.JoinHostPort(host, strconv.Itoa(port)), Path: path, RawQuery: q.Encode()}, nil
}

// nodeAddress picks the node's address in kubeadm's order of preference:
// InternalIP, ExternalIP, Hostname.
func nodeAddress(node *corev1.Node) string {
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeHostName} {
		for _, a := range node.Status.Addresses {
			if a.Type == t && a.Address != "" {
				return a.Address
			}
		}
	}
	return ""
}

// streamFromKubelet copies the kubelet's answer at loc to the client,
// flushing as it arrives when following. A kubelet error becomes a Status
// with its code and message, as upstream's response checker makes it.
func (c *call) streamFromKubelet(node string, loc *url.URL, opts *corev1.PodLogOptions) error {
	if c.s.cfg.KubeletClientTLS == nil {
		return apierrors.NewServiceUnavailable("the API server has no client certificate for kubelets, so it cannot reach node " + strconv.Quote(node))
	}
	tlsCfg := c.s.cfg.KubeletClientTLS.Clone()
	if tlsCfg.RootCAs == nil || opts.InsecureSkipTLSVerifyBackend {
		tlsCfg.InsecureSkipVerify = true
	}
	tr := &http.Transport{
		// Never through an environment proxy: the kubelet is on the node
		// network.
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: kubeletDialTimeout}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   kubeletTLSTimeout,
		ResponseHeaderTimeout: kubeletResponseTimeout,
		DisableKeepAlives:     true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(c.ctx, http.MethodGet, loc.String(), nil)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return kubeletUnreachable(node, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, kubeletErrorLimit))
		return kubeletError(resp.StatusCode, c.info.Name, strings.TrimSpace(string(body)))
	}
	c.w.Header().Set("Content-Type", "text/plain")
	c.w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(c.w)
	if opts.Follow {
		_ = rc.Flush()
	}
	buf := make([]byte, 32*1024)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := c.w.Write(buf[:n]); werr != nil {
				return nil // the client went
			}
			if opts.Follow {
				_ = rc.Flush()
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && c.ctx.Err() == nil {
				c.s.log.Debug("pod log stream ended", "pod", c.info.Namespace+"/"+c.info.Name, "node", node, "err", err)
			}
			return nil
		}
	}
}

// kubeletUnreachable is the error for a kubelet that does not answer: a
// 502 naming the node, so a simulated node (which runs no kubelet server)
// or a down one is told apart from an API server fault.
func kubeletUnreachable(node string, err error) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure,
		Code:   http.StatusBadGateway,
		Reason: metav1.StatusReasonServiceUnavailable,
		Message: fmt.Sprintf("cannot reach the kubelet of node %q (a simulated node serves no logs): %v",
			node, err),
	}}
}

// kubeletError turns a kubelet's error answer into a Status.
func kubeletError(code int, pod, msg string) error {
	gr := schema.GroupResource{Resource: "pods"}
	switch code {
	case http.StatusBadRequest:
		return apierrors.NewBadRequest(msg)
	case http.StatusInternalServerError:
		return apierrors.NewInternalError(errors.New(msg))
	}
	reason := metav1.StatusReasonUnknown
	switch code {
	case http.StatusUnauthorized:
		reason = metav1.StatusReasonUnauthorized
	case http.StatusForbidden:
		reason = metav1.StatusReasonForbidden
	case http.StatusNotFound:
		reason = metav1.StatusReasonNotFound
	case http.StatusUnprocessableEntity:
		reason = metav1.StatusReasonInvalid
	}
	if msg == "" {
		msg = fmt.Sprintf("the kubelet answered %d", code)
	}
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg,
		Details: &metav1.StatusDetails{Group: gr.Group, Kind: gr.Resource, Name: pod},
	}}
}
