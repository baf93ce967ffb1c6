package apiserver

import (
	"fmt"
	"net/url"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// pods/portforward, as upstream serves it: the API server finds the pod's
// node and proxies the client's upgraded connection (SPDY/3.1 with
// portforward.k8s.io, or SPDY tunneled in a WebSocket) to the kubelet's
// /portForward/{namespace}/{pod}. The ports travel in the streams'
// headers; a ports query, when given, must name valid ports.

// parsePortForwardPorts reads and checks the optional ports query.
func parsePortForwardPorts(q url.Values) ([]int32, error) {
	var ports []int32
	for _, s := range q["ports"] {
		p, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("ports: invalid port %q", s))
		}
		if p < 1 || p > 65535 {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("port %d must be between 1 and 65535, inclusive", p))
		}
		ports = append(ports, int32(p))
	}
	return ports, nil
}

// kubeletPortForwardURL is the kubelet's port-forward URL for the pod.
func kubeletPortForwardURL(node *corev1.Node, pod *corev1.Pod, ports []int32) (*url.URL, error) {
	q := url.Values{}
	for _, p := range ports {
		q.Add("port", strconv.Itoa(int(p)))
	}
	return kubeletURL(node, "/portForward/"+url.PathEscape(pod.Namespace)+"/"+url.PathEscape(pod.Name), q)
}

// podPortForward serves GET and POST pods/{name}/portforward.
func (c *call) podPortForward() error {
	if c.info.Verb != "get" && c.info.Verb != "create" {
		return apierrors.NewMethodNotSupported(c.ep.gr(), c.info.Verb)
	}
	ports, err := parsePortForwardPorts(c.r.URL.Query())
	if err != nil {
		return err
	}
	pod, err := c.addressedPod()
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
	loc, err := kubeletPortForwardURL(node, pod, ports)
	if err != nil {
		return err
	}
	return c.proxyUpgrade(node.Name, loc)
}
