//! The `ferrolb-test-apiserver` binary as a separate process, reached through the kubeconfig
//! file it writes (plain `http://` server URL), with objects preloaded from a directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

/// Kills the server process and removes the scratch directory, even when the test fails.
struct Cleanup {
    child: Child,
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const CRD_YAML: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: ferrolb-system
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ipaddresspools.ferrolb.io
spec:
  group: ferrolb.io
  scope: Namespaced
  names:
    plural: ipaddresspools
    singular: ipaddresspool
    kind: IPAddressPool
    shortNames: [ipp]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              addresses:
                type: array
                items:
                  type: string
"#;

#[tokio::test]
async fn binary_serves_a_kubeconfig_and_preloaded_crds() {
    let dir = std::env::temp_dir().join(format!("ferrolb-testapiserver-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("crds")).unwrap();
    std::fs::write(dir.join("crds/ferrolb.yaml"), CRD_YAML).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    let child = Command::new(env!("CARGO_BIN_EXE_ferrolb-test-apiserver"))
        .args(["--listen", "127.0.0.1:0", "--kube-version", "1.24.3"])
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .arg("--crds")
        .arg(dir.join("crds"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut guard = Cleanup {
        child,
        dir: dir.clone(),
    };
    let stdout = guard.child.stdout.take().unwrap();
    let url = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line.trim().to_string()
    });
    let url = tokio::time::timeout(std::time::Duration::from_secs(30), url)
        .await
        .expect("server printed its URL")
        .unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(config.cluster_url.to_string().trim_end_matches('/'), url);
    let client = kube::Client::try_from(config).unwrap();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.git_version, "v1.24.3");
    let nss: Api<Namespace> = Api::all(client.clone());
    assert!(nss.get_opt("ferrolb-system").await.unwrap().is_some());
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds.get("ipaddresspools.ferrolb.io").await.unwrap();
    let established = crd
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .any(|c| c.type_ == "Established" && c.status == "True");
    assert!(established);
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("ferrolb.io", "v1", "IPAddressPool"),
        "ipaddresspools",
    );
    let pools: Api<DynamicObject> = Api::namespaced_with(client, "ferrolb-system", &ar);
    let pool: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "ferrolb.io/v1", "kind": "IPAddressPool", "metadata": {"name": "default"},
        "spec": {"addresses": ["192.0.2.0/24"]}
    }))
    .unwrap();
    pools.create(&PostParams::default(), &pool).await.unwrap();
    assert_eq!(
        pools
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    drop(guard);
}
