//! `ferrolb status sessions|routes|services|pools|l2|config`: a running speaker's gRPC status API
//! as aligned tables (shaped like `birdc show protocols` and `gobgp neighbor`), or as JSON or
//! YAML with `-o`. `--watch` prints the table, then one line (or one JSON document) per
//! session or route change as the speaker reports it.

use std::time::Duration;

use anyhow::Context;
use ferrolb_api_grpc::pb;
use ferrolb_api_grpc::pb::route_change::Action;
use ferrolb_api_grpc::pb::session_error::Kind;
use ferrolb_api_grpc::pb::watch_event::Event;
use serde::Serialize;

use crate::Outcome;

/// Arguments of `ferrolb status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to show.
    #[arg(value_enum)]
    what: What,
    /// The speaker's status API (its --status-address).
    #[arg(long, short = 'a', value_name = "ADDR:PORT", default_value = ferrolb_api_grpc::DEFAULT_ADDRESS, global = true)]
    address: String,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    output: Format,
    /// After the current state, print session and route changes as they happen (Ctrl-C ends).
    #[arg(long, short = 'w')]
    watch: bool,
    /// How long to wait for the speaker to answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 3)]
    timeout: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum What {
    Sessions,
    Routes,
    Services,
    Pools,
    /// Layer 2: VIP groups, their owners and why the other nodes are not, and the members.
    L2,
    Config,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Json,
    Yaml,
}

pub fn run(args: &Args) -> anyhow::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: &Args) -> anyhow::Result<Outcome> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut client = ferrolb_api_grpc::connect(&args.address, timeout).await?;
    let call = async {
        Ok::<_, tonic_status::Error>(match args.what {
            What::Sessions => render(
                args.output,
                &client
                    .list_sessions(pb::ListSessionsRequest::default())
                    .await?
                    .into_inner(),
                sessions_table,
            )?,
            What::Routes => render(
                args.output,
                &client
                    .list_routes(pb::ListRoutesRequest::default())
                    .await?
                    .into_inner(),
                routes_table,
            )?,
            What::Services => render(
                args.output,
                &client
                    .list_services(pb::ListServicesRequest::default())
                    .await?
                    .into_inner(),
                services_table,
            )?,
            What::Pools => render(
                args.output,
                &client
                    .list_pools(pb::ListPoolsRequest::default())
                    .await?
                    .into_inner(),
                pools_table,
            )?,
            What::L2 => render(
                args.output,
                &client
                    .list_l2(pb::ListL2Request::default())
                    .await?
                    .into_inner(),
                l2_table,
            )?,
            What::Config => render(
                args.output,
                &client
                    .get_config(pb::GetConfigRequest::default())
                    .await?
                    .into_inner(),
                config_table,
            )?,
        })
    };
    let text = tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "{}: the speaker did not answer within {}s",
                args.address,
                timeout.as_secs()
            )
        })?
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.address))?;
    print!("{text}");
    if args.watch {
        let mut stream = client
            .watch(pb::WatchRequest { skip_initial: true })
            .await
            .with_context(|| format!("{}: watch", args.address))?
            .into_inner();
        while let Some(event) = stream
            .message()
            .await
            .with_context(|| format!("{}: watch stream", args.address))?
        {
            match args.output {
                Format::Table => println!("{}", event_line(&event)),
                Format::Json => println!("{}", serde_json::to_string(&event)?),
                Format::Yaml => print!("---\n{}", serde_saphyr::to_string(&event)?),
            }
        }
        anyhow::bail!("{}: the speaker ended the watch stream", args.address);
    }
    Ok(Outcome::Clean)
}

/// Errors of one status call: gRPC failures and serialization.
mod tonic_status {
    #[derive(Debug, thiserror::Error)]
    pub enum Error {
        #[error("{}", .0.message())]
        Call(#[from] tonic::Status),
        #[error("JSON: {0}")]
        Json(#[from] serde_json::Error),
        #[error("YAML: {0}")]
        Yaml(#[from] serde_saphyr::SerializeError),
    }
}

fn render<T: Serialize>(
    format: Format,
    value: &T,
    table: fn(&T) -> String,
) -> Result<String, tonic_status::Error> {
    Ok(match format {
        Format::Table => table(value),
        Format::Json => serde_json::to_string_pretty(value)? + "\n",
        Format::Yaml => serde_saphyr::to_string(value)?,
    })
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let w = widths.get(i).copied().unwrap_or(0);
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// `1d02h03m`, `2h03m04s`, `3m04s`, `5s`: what routers print for session uptime.
pub fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}h{m:02}m")
    } else if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

fn error_text(e: &pb::SessionError) -> String {
    match (Kind::try_from(e.kind), &e.notification) {
        (Ok(Kind::NotificationSent), Some(n)) => format!("sent {}", n.text),
        (Ok(Kind::NotificationReceived), Some(n)) => format!("received {}", n.text),
        _ => e.text.clone(),
    }
}

fn sessions_table(r: &pb::ListSessionsResponse) -> String {
    let rows: Vec<Vec<String>> = r
        .sessions
        .iter()
        .map(|s| {
            let sent = s.messages_sent.as_ref().map_or(0, |c| c.total);
            let rcvd = s.messages_received.as_ref().map_or(0, |c| c.total);
            let info = if s.established {
                s.negotiated.as_ref().map_or(String::new(), |n| {
                    format!("hold {}s, {}", n.hold_time_seconds, n.families.join(" "))
                })
            } else if let Some(e) = &s.last_error {
                error_text(e)
            } else {
                s.last_connect_error.clone()
            };
            vec![
                s.name.clone(),
                s.peer_address.clone(),
                s.peer_as.to_string(),
                s.state.clone(),
                if s.established {
                    human_duration(s.uptime_seconds)
                } else {
                    "-".into()
                },
                s.flaps.to_string(),
                format!("{}/{}", sent, rcvd),
                format!(
                    "{}/{}",
                    s.prefixes_advertised_v4 + s.prefixes_advertised_v6,
                    s.prefixes_desired
                ),
                s.prefixes_received.to_string(),
                info,
            ]
        })
        .collect();
    let mut out = table(
        &[
            "PEER",
            "ADDRESS",
            "AS",
            "STATE",
            "UPTIME",
            "FLAPS",
            "MSGS OUT/IN",
            "PFX OUT/WANT",
            "PFX IN",
            "INFO",
        ],
        &rows,
    );
    if !r.peers_without_session.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = r
            .peers_without_session
            .iter()
            .map(|p| vec![p.peer.clone(), p.reason.clone()])
            .collect();
        out.push_str(&table(&["PEER WITHOUT SESSION", "WHY"], &rows));
    }
    out
}

fn optional(v: Option<u32>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn communities(r: &pb::Route) -> String {
    let all: Vec<&str> = r
        .communities
        .iter()
        .chain(&r.large_communities)
        .map(String::as_str)
        .collect();
    if all.is_empty() {
        "-".into()
    } else {
        all.join(" ")
    }
}

fn routes_table(r: &pb::ListRoutesResponse) -> String {
    let mut rows = Vec::new();
    for p in &r.peers {
        if p.routes.is_empty() {
            rows.push(vec![
                p.peer.clone(),
                p.state.clone(),
                "(none)".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]);
        }
        for route in &p.routes {
            rows.push(vec![
                p.peer.clone(),
                p.state.clone(),
                route.prefix.clone(),
                optional(route.local_pref),
                optional(route.med),
                communities(route),
                route.services.join(","),
            ]);
        }
    }
    let mut out = table(
        &[
            "PEER",
            "STATE",
            "PREFIX",
            "LOCAL-PREF",
            "MED",
            "COMMUNITIES",
            "SERVICES",
        ],
        &rows,
    );
    let counts: Vec<String> = r
        .peers
        .iter()
        .map(|p| {
            format!(
                "{}: {} planned, {} advertised (v4 {}, v6 {})",
                p.peer,
                p.routes.len(),
                p.prefixes_advertised_v4 + p.prefixes_advertised_v6,
                p.prefixes_advertised_v4,
                p.prefixes_advertised_v6
            )
        })
        .collect();
    if !counts.is_empty() {
        out.push('\n');
        out.push_str(&counts.join("\n"));
        out.push('\n');
    }
    out
}

fn services_table(r: &pb::ListServicesResponse) -> String {
    let rows: Vec<Vec<String>> = r
        .services
        .iter()
        .map(|s| {
            let mut peers: Vec<&str> = s.announcements.iter().map(|a| a.peer.as_str()).collect();
            peers.dedup();
            let detail = if s.announced {
                let mut places = Vec::new();
                if !peers.is_empty() {
                    places.push(format!("to {}", peers.join(",")));
                }
                if !s.l2_group.is_empty() {
                    places.push(format!("layer 2 (group {})", s.l2_group));
                }
                let mut d = places.join(", ");
                if !s.reasons.is_empty() {
                    d.push_str(&format!(" (also: {})", s.reasons.join("; ")));
                }
                d
            } else {
                s.reasons.join("; ")
            };
            vec![
                format!("{}/{}", s.namespace, s.name),
                if s.addresses.is_empty() {
                    "-".into()
                } else {
                    s.addresses.join(",")
                },
                if s.pool.is_empty() {
                    "-".into()
                } else {
                    s.pool.clone()
                },
                if s.announced { "yes" } else { "no" }.into(),
                detail,
            ]
        })
        .collect();
    table(
        &[
            "SERVICE",
            "ADDRESSES",
            "POOL",
            "ANNOUNCED",
            "WHERE / WHY NOT",
        ],
        &rows,
    )
}

fn pools_table(r: &pb::ListPoolsResponse) -> String {
    let mut rows = Vec::new();
    for p in &r.pools {
        for (family, usage) in [("ipv4", &p.ipv4), ("ipv6", &p.ipv6)] {
            let Some(u) = usage else { continue };
            if u.total == "0" {
                continue;
            }
            rows.push(vec![
                p.name.clone(),
                family.into(),
                u.total.clone(),
                u.in_use.clone(),
                u.available.clone(),
                format!("{:.1}%", u.used_ratio * 100.0),
            ]);
        }
    }
    table(
        &["POOL", "FAMILY", "TOTAL", "IN USE", "AVAILABLE", "USED"],
        &rows,
    )
}

/// The groups (VIP, owner, interface, epoch, since, reason, why not the others), then the
/// segment's members, then problems and warnings.
pub fn l2_table(r: &pb::ListL2Response) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    let mut out = String::new();
    if !r.problem.is_empty() {
        out.push_str(&format!("layer 2 does not run: {}\n", r.problem));
    } else if r.running {
        out.push_str(&format!("node {} ({})\n", r.node, r.phase));
    } else {
        out.push_str("layer 2 is not used on this node\n");
    }
    let rows: Vec<Vec<String>> = r
        .groups
        .iter()
        .map(|g| {
            let owner = if g.owned_here {
                format!("{} (here)", g.owner)
            } else {
                dash(&g.owner)
            };
            let interface = if g.interface_problem.is_empty() {
                dash(&g.interface)
            } else {
                format!("- ({})", g.interface_problem)
            };
            let since = if g.since_unix_ms > 0 {
                human_duration(u64::try_from((now - g.since_unix_ms) / 1000).unwrap_or(0))
            } else {
                "-".into()
            };
            let others: Vec<String> = g
                .not_owner
                .iter()
                .map(|n| format!("{}: {}", n.node, n.reason))
                .collect();
            vec![
                g.addresses.join(","),
                owner,
                interface,
                if g.epoch == 0 {
                    "-".into()
                } else if g.provisional {
                    format!("{} (provisional)", g.epoch)
                } else {
                    g.epoch.to_string()
                },
                since,
                dash(&g.reason),
                if g.eligible {
                    "yes".into()
                } else {
                    "no".into()
                },
                g.requests_answered.to_string(),
                if others.is_empty() {
                    "-".into()
                } else {
                    others.join("; ")
                },
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "VIP",
            "OWNER",
            "INTERFACE",
            "EPOCH",
            "SINCE",
            "REASON",
            "ELIGIBLE",
            "ANSWERED",
            "NOT OWNER",
        ],
        &rows,
    ));
    if !r.members.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = r
            .members
            .iter()
            .map(|m| {
                vec![
                    m.node.clone(),
                    m.liveness.clone(),
                    dash(&m.mac),
                    dash(&m.interface),
                    if m.rtt_micros == 0 {
                        "-".into()
                    } else {
                        format!("{:.2}ms", m.rtt_micros as f64 / 1000.0)
                    },
                    m.beats_received.to_string(),
                    m.beats_lost.to_string(),
                    m.deaths.to_string(),
                    format!("{}/{}", m.owned_groups, m.eligible_groups),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "MEMBER",
                "STATE",
                "MAC",
                "INTERFACE",
                "RTT",
                "BEATS",
                "LOST",
                "DEATHS",
                "OWNED/ELIGIBLE",
            ],
            &rows,
        ));
    }
    for c in &r.conflicts {
        out.push_str(&format!(
            "conflict: {} also answered by {} on {} ({} times{})\n",
            c.vip,
            c.mac,
            c.interface,
            c.count,
            if c.peer.is_empty() {
                String::new()
            } else {
                format!(", member {}", c.peer)
            }
        ));
    }
    if !r.bind_refused.is_empty() {
        out.push_str(&format!("not bound: {}\n", r.bind_refused));
    }
    for w in &r.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}

fn config_table(c: &pb::ConfigState) -> String {
    let mut rows = vec![
        vec!["generation".into(), c.generation.to_string()],
        vec![
            "state".into(),
            if c.generation == 0 && !c.stale {
                "not loaded yet".into()
            } else if c.stale {
                format!(
                    "STALE: the latest read was refused, generation {} stays applied",
                    c.generation
                )
            } else {
                "applied".into()
            },
        ],
        vec![
            "router id".into(),
            if c.router_id.is_empty() {
                "-".into()
            } else {
                c.router_id.clone()
            },
        ],
        vec![
            "last apply".into(),
            format!("{:.3} ms", c.last_apply_micros as f64 / 1000.0),
        ],
        vec![
            "bound addresses".into(),
            if c.bound_addresses.is_empty() {
                "-".into()
            } else {
                c.bound_addresses.join(", ")
            },
        ],
    ];
    for p in &c.rejected {
        rows.push(vec!["refused".into(), p.clone()]);
    }
    for p in &c.peer_errors {
        rows.push(vec![
            "peer error".into(),
            format!("{}: {}", p.peer, p.reason),
        ]);
    }
    for p in &c.peer_warnings {
        rows.push(vec![
            "peer warning".into(),
            format!("{}: {}", p.peer, p.reason),
        ]);
    }
    table(&["CONFIG", "VALUE"], &rows)
}

/// `hh:mm:ss.mmmZ` of a Unix time in milliseconds.
fn clock(ms: i64) -> String {
    let day = ms.div_euclid(1000).rem_euclid(86400);
    format!(
        "{:02}:{:02}:{:02}.{:03}Z",
        day / 3600,
        day / 60 % 60,
        day % 60,
        ms.rem_euclid(1000)
    )
}

/// One line per watch event.
pub fn event_line(e: &pb::WatchEvent) -> String {
    let what = match &e.event {
        Some(Event::Session(s)) => {
            let mut line = format!("session {} {} {}", s.name, s.peer_address, s.state);
            if !s.established
                && let Some(err) = &s.last_error
            {
                line.push_str(&format!(": {}", error_text(err)));
            }
            line
        }
        Some(Event::SessionRemoved(name)) => format!("session {name} removed"),
        Some(Event::Route(r)) => {
            let action = match Action::try_from(r.action) {
                Ok(Action::Added) => "announce",
                Ok(Action::Withdrawn) => "withdraw",
                Ok(Action::Changed) => "update",
                _ => "?",
            };
            let route = r.route.clone().unwrap_or_default();
            format!(
                "route {action} {} to {} (services {})",
                route.prefix,
                r.peer,
                route.services.join(",")
            )
        }
        Some(Event::Config(c)) => format!(
            "config generation {}{}",
            c.generation,
            if c.stale {
                " (latest read refused)"
            } else {
                ""
            }
        ),
        None => "unknown event".into(),
    };
    format!("{} {what}", clock(e.at_unix_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_leave_the_last_unpadded() {
        let t = table(
            &["PEER", "STATE", "INFO"],
            &[
                vec!["r1".into(), "Established".into(), "hold 90s".into()],
                vec!["router-two".into(), "Idle".into(), "".into()],
            ],
        );
        assert_eq!(
            t,
            "PEER        STATE        INFO\n\
             r1          Established  hold 90s\n\
             router-two  Idle\n"
        );
    }

    #[test]
    fn uptime_reads_like_a_router_prints_it() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(64), "1m04s");
        assert_eq!(human_duration(3600 + 120 + 3), "1h02m03s");
        assert_eq!(human_duration(2 * 86400 + 3600), "2d01h00m");
    }
}
