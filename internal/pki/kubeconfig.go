package pki

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubeconfigName names the cluster, user and context in kubeconfig files
// written by WriteKubeconfig.
const kubeconfigName = "skiff"

// WriteKubeconfig writes a kubeconfig file with one cluster, one user and
// one context, all named "skiff", the context current. The CA and the client
// certificate and key are embedded, so the file works on its own when copied
// to another machine. The file is replaced atomically with mode 0600 (it
// holds a private key); missing parent directories are created 0755.
func WriteKubeconfig(path, serverURL string, caPEM, certPEM, keyPEM []byte) error {
	if serverURL == "" {
		return errors.New("pki: kubeconfig needs a server URL")
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[kubeconfigName] = &clientcmdapi.Cluster{
		Server:                   serverURL,
		CertificateAuthorityData: caPEM,
	}
	cfg.AuthInfos[kubeconfigName] = &clientcmdapi.AuthInfo{
		ClientCertificateData: certPEM,
		ClientKeyData:         keyPEM,
	}
	cfg.Contexts[kubeconfigName] = &clientcmdapi.Context{
		Cluster:  kubeconfigName,
		AuthInfo: kubeconfigName,
	}
	cfg.CurrentContext = kubeconfigName
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("pki: encode kubeconfig %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("pki: create kubeconfig directory: %w", err)
	}
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}
