//! The Kubernetes client of the subcommands that talk to a cluster (`controller`,
//! `speaker --kubernetes`): from `--kubeconfig`, else `$KUBECONFIG`, `~/.kube/config` or the
//! in-cluster service account.

use std::path::Path;

use anyhow::Context;

/// Builds the client.
pub async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("--kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .with_context(|| format!("--kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no kubeconfig and not running in a cluster")?,
    };
    kube::Client::try_from(config).context("cannot build the Kubernetes client")
}
