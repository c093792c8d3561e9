//! Compiles proto/ferrolb/v1/status.proto (needs `protoc`: Debian's protobuf-compiler, or set
//! PROTOC) into the message types, the server and the client, plus the encoded file descriptor
//! set that server reflection serves.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let proto = root.join("ferrolb/v1/status.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("ferrolb_v1_descriptor.bin"))
        .type_attribute(".", "#[derive(serde::Serialize)]")
        .type_attribute(".", "#[serde(rename_all = \"snake_case\")]")
        .field_attribute(
            "ferrolb.v1.SessionError.kind",
            "#[serde(serialize_with = \"crate::enum_names::session_error_kind\")]",
        )
        .field_attribute(
            "ferrolb.v1.RouteChange.action",
            "#[serde(serialize_with = \"crate::enum_names::route_action\")]",
        )
        .compile_protos(&[proto], &[root])?;
    Ok(())
}
