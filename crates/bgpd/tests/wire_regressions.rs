//! Regressions: malformed input the decoder must survive with the exact RFC 4271 §6 / RFC 7606
//! outcome (a NOTIFICATION code/subcode/data, or treat-as-withdraw, or attribute discard), never
//! a panic, hang or unbounded allocation. The first group is the table of inputs that broke
//! zettabgp (`docs/bgp-wire.md`, "Inputs every decoder of ours must survive"); later groups
//! cover each RFC case and the findings of fuzzing (`fuzz/`).

// Helpers outside #[test] functions unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;

use ferrolb_bgpd::wire::{
    AsPath, AsSegment, Capability, CodecContext, DecodeError, ErrorAction, Family,
    MAX_EXTENDED_MESSAGE_LEN, Message, NextHop, Notification, OpenError, Origin, PathAttribute,
    RawAttribute, RecoveredError, Update, UpdateError, frame_len,
};

const MARKER: &str = "ffffffffffffffffffffffffffffffff";

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(s).expect("test hex")
}

/// A whole message of `msg_type` around `body_hex`, with the right length.
fn message(msg_type: u8, body_hex: &str) -> Vec<u8> {
    let body = hex(body_hex);
    let mut out = hex(MARKER);
    out.extend_from_slice(&u16::try_from(19 + body.len()).unwrap().to_be_bytes());
    out.push(msg_type);
    out.extend_from_slice(&body);
    out
}

fn update(body_hex: &str) -> Vec<u8> {
    message(2, body_hex)
}

fn contexts() -> [CodecContext; 2] {
    [
        CodecContext::default(),
        CodecContext {
            four_octet_as: true,
            max_message_len: MAX_EXTENDED_MESSAGE_LEN,
            ..CodecContext::default()
        },
    ]
}

/// Decodes under both contexts and expects the same error from each and from `frame_len`'s
/// view of the header.
fn decode_err(bytes: &[u8]) -> DecodeError {
    let errs: Vec<DecodeError> = contexts()
        .iter()
        .map(|ctx| Message::decode(bytes, ctx).expect_err("must not decode"))
        .collect();
    assert_eq!(errs[0], errs[1]);
    errs[0].clone()
}

fn decode_err_ctx(bytes: &[u8], ctx: &CodecContext) -> DecodeError {
    Message::decode(bytes, ctx).expect_err("must not decode")
}

/// The NOTIFICATION the error asks for, as (code, subcode, data hex).
fn answer(e: &DecodeError) -> (u8, u8, String) {
    let n = e.notification().expect("a NOTIFICATION is sent");
    (n.code, n.subcode, hex::encode(n.data))
}

fn decoded_update(bytes: &[u8], ctx: &CodecContext) -> Update {
    match Message::decode(bytes, ctx) {
        Ok(Message::Update(u)) => u,
        other => panic!("expected an UPDATE, got {other:?}"),
    }
}

fn twa(error: UpdateError) -> RecoveredError {
    RecoveredError {
        action: ErrorAction::TreatAsWithdraw,
        error,
    }
}

fn discard(error: UpdateError) -> RecoveredError {
    RecoveredError {
        action: ErrorAction::AttributeDiscard,
        error,
    }
}

/// An internal peer's context (RFC 7606 §7.5, §7.9, §7.10 depend on it).
fn ibgp() -> CodecContext {
    CodecContext {
        ibgp: true,
        ..CodecContext::default()
    }
}

/// An UPDATE announcing 10.0.0.0/8 with `attr_hex` and whichever of ORIGIN, AS_PATH and
/// NEXT_HOP `attr_hex` does not start with, so an attribute error there has routes to
/// withdraw (RFC 7606 §2) instead of being escalated for lack of NLRI (§5.2).
fn routes_with(attr_hex: &str) -> Vec<u8> {
    let attr = hex(attr_hex);
    let mut attrs = String::new();
    for (type_code, mandatory) in [(1u8, "40010100"), (2, "400200"), (3, "400304c0000201")] {
        if attr.get(1) != Some(&type_code) {
            attrs.push_str(mandatory);
        }
    }
    attrs.push_str(&hex::encode(&attr));
    update_parts("", &attrs, "08 0a")
}

/// Decodes under both contexts; they must agree (the input has no ASN-width dependence).
fn decoded_update_both(bytes: &[u8]) -> Update {
    let [a, b] = contexts();
    let u = decoded_update(bytes, &a);
    assert_eq!(u, decoded_update(bytes, &b));
    u
}

// ---------------------------------------------------------------------------------------------
// docs/bgp-wire.md, "Inputs every decoder must survive": the regression table

#[test]
fn as_path_with_a_dangling_byte_resets_without_nlri_and_is_treat_as_withdraw_with_it() {
    // The 29-byte message that hangs zettabgp.
    let bytes = hex("ffffffffffffffffffffffffffffffff001d0200000006400203020000");
    assert_eq!(bytes, update("0000 0006 40 02 03 02 00 00"));
    // RFC 7606 §5.2: no NLRI, so nothing to treat as withdrawn: session reset with the
    // NOTIFICATION the error names (Malformed AS_PATH).
    let e = decode_err(&bytes);
    assert!(matches!(
        e,
        DecodeError::Update(UpdateError::MalformedAsPath { type_code: 2, .. })
    ));
    assert_eq!(answer(&e), (3, 11, String::new()));
    for ctx in contexts() {
        let u = decoded_update(&routes_with("40 02 03 02 00 00"), &ctx);
        assert!(u.treat_as_withdraw());
        assert!(
            !u.attributes
                .iter()
                .any(|a| matches!(a, PathAttribute::AsPath(_)))
        );
        assert!(matches!(
            u.recovered_errors.as_slice(),
            [RecoveredError {
                action: ErrorAction::TreatAsWithdraw,
                error: UpdateError::MalformedAsPath { type_code: 2, .. }
            }]
        ));
    }
}

#[test]
fn as_path_segment_claiming_more_asns_than_present_is_treat_as_withdraw() {
    let error = UpdateError::MalformedAsPath {
        type_code: 2,
        reason: "segment has fewer ASNs than its count",
    };
    let e = decode_err(&update("0000 0005 40 02 02 02 01"));
    assert_eq!(e, DecodeError::Update(error.clone()));
    let u = decoded_update_both(&routes_with("40 02 02 02 01"));
    assert_eq!(u.recovered_errors, vec![twa(error)]);
}

#[test]
fn communities_length_not_a_multiple_of_4_is_treat_as_withdraw() {
    let e = decode_err(&update("0000 0005 c0 08 02 0000"));
    assert_eq!(answer(&e), (3, 5, "c008020000".to_owned()));
    let u = decoded_update_both(&routes_with("c0 08 02 0000"));
    assert!(u.treat_as_withdraw());
    assert_eq!(
        u.recovered_errors,
        vec![twa(UpdateError::AttributeLength {
            type_code: 8,
            length: 2,
            expected: "expected a non-zero multiple of 4",
            attribute: hex("c008020000"),
        })]
    );
    assert_eq!(answer_of(&u), (3, 5, "c008020000".to_owned()));
}

/// The NOTIFICATION the first recovered error would have been.
fn answer_of(u: &Update) -> (u8, u8, String) {
    let n = u.recovered_errors[0].error.notification();
    (n.code, n.subcode, hex::encode(n.data))
}

#[test]
fn large_communities_length_not_a_multiple_of_12_is_treat_as_withdraw() {
    let e = decode_err(&update("0000 0004 c0 20 01 00"));
    assert_eq!(answer(&e), (3, 5, "c0200100".to_owned()));
    let u = decoded_update_both(&routes_with("c0 20 01 00"));
    assert!(u.treat_as_withdraw());
    assert_eq!(answer_of(&u), (3, 5, "c0200100".to_owned()));
}

#[test]
fn originator_id_too_short_is_discarded_from_ebgp_and_treat_as_withdraw_from_ibgp() {
    let bytes = update("0000 0004 80 09 01 00");
    // RFC 7606 §7.9: from an external peer, attribute discard.
    for ctx in contexts() {
        let u = decoded_update(&bytes, &ctx);
        assert!(!u.treat_as_withdraw());
        assert!(u.attributes.is_empty());
        assert_eq!(u.recovered_errors[0].action, ErrorAction::AttributeDiscard);
        assert_eq!(answer_of(&u), (3, 5, "80090100".to_owned()));
    }
    // From an internal peer, treat-as-withdraw; with no NLRI that is a session reset
    // (RFC 7606 §5.2).
    let e = decode_err_ctx(&bytes, &ibgp());
    assert_eq!(answer(&e), (3, 5, "80090100".to_owned()));
    assert!(decoded_update(&routes_with("80 09 01 00"), &ibgp()).treat_as_withdraw());
}

#[test]
fn truncated_attribute_header_of_one_octet_resets_with_malformed_attribute_list() {
    let e = decode_err(&update("0000 0001 40"));
    assert_eq!(
        e,
        DecodeError::Update(UpdateError::MalformedAttributeList {
            reason: "truncated attribute header"
        })
    );
    assert_eq!(answer(&e), (3, 1, String::new()));
}

#[test]
fn truncated_attribute_header_of_two_octets_resets_with_malformed_attribute_list() {
    let e = decode_err(&update("0000 0002 40 01"));
    assert_eq!(answer(&e), (3, 1, String::new()));
}

#[test]
fn empty_mp_unreach_resets_with_optional_attribute_error() {
    let e = decode_err(&update("0000 0003 80 0f 00"));
    assert_eq!(answer(&e), (3, 9, "800f00".to_owned()));
}

#[test]
fn mp_unreach_without_safi_resets_with_optional_attribute_error() {
    let e = decode_err(&update("0000 0005 80 0f 02 0002"));
    assert_eq!(answer(&e), (3, 9, "800f020002".to_owned()));
}

#[test]
fn short_mp_reach_resets_with_optional_attribute_error() {
    let e = decode_err(&update("0000 0005 80 0e 02 0002"));
    assert_eq!(answer(&e), (3, 9, "800e020002".to_owned()));
}

#[test]
fn mp_reach_next_hop_beyond_the_attribute_resets_with_optional_attribute_error() {
    let e = decode_err(&update("0000 0008 80 0e 05 0002 01 10 00"));
    assert_eq!(
        e,
        DecodeError::Update(UpdateError::OptionalAttribute {
            type_code: 14,
            reason: "next hop overruns the attribute",
            attribute: hex("800e050002011000"),
        })
    );
    assert_eq!(answer(&e), (3, 9, "800e050002011000".to_owned()));
}

#[test]
fn attr_set_is_an_unknown_attribute_kept_raw() {
    // ATTR_SET (RFC 6368, type 128) is well framed; we do not interpret it.
    let u = decoded_update_both(&update("0000 0008 80 80 05 0000fde9 40"));
    assert!(u.recovered_errors.is_empty());
    assert_eq!(
        u.attributes,
        vec![PathAttribute::Unknown(RawAttribute {
            flags: 0x80,
            type_code: 128,
            value: hex("0000fde940")
        })]
    );
}

#[test]
fn nlri_prefix_length_255_resets_with_invalid_network_field() {
    let e = decode_err(&update("0000 0000 ff"));
    assert_eq!(answer(&e), (3, 10, String::new()));
}

// ---------------------------------------------------------------------------------------------
// docs/bgp-wire.md: header cases (RFC 4271 §6.1)

#[test]
fn length_below_19_is_bad_message_length() {
    let bytes = hex(&format!("{MARKER} 0012 04"));
    let e = decode_err(&bytes);
    assert_eq!(answer(&e), (1, 2, "0012".to_owned()));
    assert_eq!(frame_len(&bytes, &CodecContext::default()), Err(e));
}

#[test]
fn keepalive_of_length_20_is_bad_message_length() {
    let bytes = hex(&format!("{MARKER} 0014 04 00"));
    let e = decode_err(&bytes);
    assert_eq!(answer(&e), (1, 2, "0014".to_owned()));
    // Known from the header alone, before the body arrives.
    assert_eq!(frame_len(&bytes[..19], &CodecContext::default()), Err(e));
}

#[test]
fn open_over_4096_is_bad_message_length_even_with_extended_messages() {
    let mut bytes = message(
        1,
        &format!("04 fde9 005a 0a000001 00 {}", "00".repeat(4068)),
    );
    assert_eq!(bytes.len(), 4097);
    let e = decode_err(&bytes);
    assert_eq!(answer(&e), (1, 2, "1001".to_owned()));
    bytes.truncate(19);
    for ctx in contexts() {
        assert_eq!(
            frame_len(&bytes, &ctx)
                .unwrap_err()
                .notification()
                .unwrap()
                .subcode,
            2
        );
    }
}

#[test]
fn update_over_4096_without_extended_message_is_bad_message_length() {
    // RFC 8654 §4: "If a BGP message with a length greater than 4,096 octets is received by a BGP
    // listener who has not advertised the BGP Extended Message Capability, the listener will
    // generate a NOTIFICATION with the Error Subcode set to Bad Message Length".
    // 816 /32s: 19 + 4 + 4080 = 4103 octets. Fine once we sent capability 6.
    let bytes = update(&format!("0000 0000 {}", "20 0a000001 ".repeat(816)));
    let len = bytes.len();
    assert_eq!(len, 4103);
    let e = decode_err_ctx(&bytes, &CodecContext::default());
    assert_eq!(answer(&e), (1, 2, "1007".to_owned()));
    assert_eq!(frame_len(&bytes[..19], &CodecContext::default()), Err(e));
    let ext = CodecContext {
        four_octet_as: true,
        max_message_len: MAX_EXTENDED_MESSAGE_LEN,
        ..CodecContext::default()
    };
    assert_eq!(frame_len(&bytes[..19], &ext), Ok(None));
    assert_eq!(frame_len(&bytes, &ext), Ok(Some(len)));
    // The routes have no attributes: decodable, but treat-as-withdraw.
    assert!(decoded_update(&bytes, &ext).treat_as_withdraw());
}

#[test]
fn unknown_message_type_is_bad_message_type() {
    let e = decode_err(&hex(&format!("{MARKER} 0013 06")));
    assert_eq!(answer(&e), (1, 3, "06".to_owned()));
}

#[test]
fn bad_marker_is_connection_not_synchronized() {
    let mut bytes = hex(&format!("{MARKER} 0013 04"));
    bytes[3] = 0;
    let e = decode_err(&bytes);
    assert_eq!(answer(&e), (1, 1, String::new()));
    // Seen as soon as the broken marker octet arrives.
    assert_eq!(frame_len(&bytes[..4], &CodecContext::default()), Err(e));
}

#[test]
fn notification_shorter_than_21_is_never_answered() {
    let bytes = hex(&format!("{MARKER} 0014 03 06"));
    let e = decode_err(&bytes);
    assert_eq!(e, DecodeError::NotificationLength { length: 20 });
    assert_eq!(e.notification(), None);
}

#[test]
fn route_refresh_not_of_length_23_is_bad_message_length() {
    let e = decode_err(&message(5, "0001 00 01 00"));
    assert_eq!(answer(&e), (1, 2, "0018".to_owned()));
}

#[test]
fn open_shorter_than_29_is_bad_message_length() {
    let e = decode_err(&message(1, "04 fde9 005a 0a000001"));
    assert_eq!(answer(&e), (1, 2, "001c".to_owned()));
}

#[test]
fn update_shorter_than_23_is_bad_message_length() {
    let e = decode_err(&message(2, "0000"));
    assert_eq!(answer(&e), (1, 2, "0015".to_owned()));
}

#[test]
fn frame_len_is_none_on_every_prefix_of_a_valid_message_then_its_length() {
    let bytes = update("0000 0014 40010100 4002060201fa56ea01 400304c000020a 20c6336407 18cb0071");
    for ctx in contexts() {
        for n in 0..bytes.len() {
            assert_eq!(
                frame_len(&bytes[..n], &ctx),
                Ok(None),
                "prefix of {n} octets"
            );
        }
        assert_eq!(frame_len(&bytes, &ctx), Ok(Some(bytes.len())));
        let mut more = bytes.clone();
        more.extend_from_slice(&bytes);
        assert_eq!(frame_len(&more, &ctx), Ok(Some(bytes.len())));
    }
}

#[test]
fn decode_refuses_a_frame_that_is_not_exactly_one_message() {
    let bytes = hex(&format!("{MARKER} 0013 04"));
    let e = decode_err(&bytes[..18]);
    assert_eq!(
        e,
        DecodeError::FrameLength {
            declared: None,
            actual: 18
        }
    );
    let mut more = bytes.clone();
    more.push(0);
    assert_eq!(
        decode_err(&more),
        DecodeError::FrameLength {
            declared: Some(19),
            actual: 20
        }
    );
}

// ---------------------------------------------------------------------------------------------
// OPEN (RFC 4271 §6.2, RFC 5492, RFC 7607, RFC 9072)

/// An OPEN body: version 4, AS 65001, hold 90, id 10.0.0.1, then `params_hex` with its length.
fn open(params_hex: &str) -> Vec<u8> {
    let params = hex(params_hex);
    message(
        1,
        &format!(
            "04 fde9 005a 0a000001 {:02x} {}",
            params.len(),
            hex::encode(params)
        ),
    )
}

fn open_err(bytes: &[u8]) -> OpenError {
    match decode_err(bytes) {
        DecodeError::Open(e) => e,
        other => panic!("expected an OPEN error, got {other:?}"),
    }
}

#[test]
fn open_version_3_is_unsupported_version_with_4_in_the_data() {
    let bytes = message(1, "03 fde9 005a 0a000001 00");
    assert_eq!(
        open_err(&bytes),
        OpenError::UnsupportedVersion { version: 3 }
    );
    assert_eq!(answer(&decode_err(&bytes)), (2, 1, "0004".to_owned()));
}

#[test]
fn open_hold_time_1_or_2_is_unacceptable() {
    for hold in ["0001", "0002"] {
        let e = decode_err(&message(1, &format!("04 fde9 {hold} 0a000001 00")));
        assert_eq!(answer(&e), (2, 6, String::new()));
    }
    for hold in ["0000", "0003"] {
        assert!(
            Message::decode(
                &message(1, &format!("04 fde9 {hold} 0a000001 00")),
                &CodecContext::default()
            )
            .is_ok()
        );
    }
}

#[test]
fn open_bgp_identifier_zero_is_bad_bgp_identifier() {
    let e = decode_err(&message(1, "04 fde9 005a 00000000 00"));
    assert_eq!(answer(&e), (2, 3, String::new()));
}

#[test]
fn open_my_as_zero_is_bad_peer_as() {
    let e = decode_err(&message(1, "04 0000 005a 0a000001 00"));
    assert_eq!(answer(&e), (2, 2, String::new()));
}

#[test]
fn open_four_octet_as_zero_is_bad_peer_as() {
    let e = decode_err(&open("0206 4104 00000000"));
    assert_eq!(answer(&e), (2, 2, String::new()));
}

#[test]
fn open_optional_parameter_other_than_capabilities_is_unsupported() {
    // Type 1, the deprecated authentication parameter.
    let bytes = open("0102 0000");
    assert_eq!(
        open_err(&bytes),
        OpenError::UnsupportedOptionalParameter { param_type: 1 }
    );
    assert_eq!(answer(&decode_err(&bytes)), (2, 4, String::new()));
}

#[test]
fn open_optional_parameters_length_disagreeing_with_the_message_is_malformed() {
    // Opt Parm Len 9, 8 octets follow.
    let e = decode_err(&message(1, "04 fde9 005a 0a000001 09 0206 0104 0001 0001"));
    assert_eq!(answer(&e), (2, 0, String::new()));
    // Opt Parm Len 4, 8 octets follow.
    let e = decode_err(&message(1, "04 fde9 005a 0a000001 04 0206 0104 0001 0001"));
    assert_eq!(answer(&e), (2, 0, String::new()));
}

#[test]
fn open_capability_overrunning_its_parameter_is_malformed() {
    let e = decode_err(&open("0204 0104 0001"));
    assert_eq!(answer(&e), (2, 0, String::new()));
}

#[test]
fn open_known_capability_with_wrong_length_is_malformed() {
    for params in [
        "0205 0103 000101",
        "0203 0201 00",
        "0205 4103 000001",
        "0205 4003 000000",
    ] {
        let e = decode_err(&open(params));
        assert!(
            matches!(e, DecodeError::Open(OpenError::MalformedCapability { .. })),
            "{params}: {e:?}"
        );
        assert_eq!(answer(&e), (2, 0, String::new()));
    }
}

#[test]
fn open_fqdn_capability_with_a_domain_name_is_kept_raw() {
    // FRR's default: hostname "rtr", domain "lab".
    let bytes = open("020a 4908 03727472 036c6162");
    let Ok(Message::Open(o)) = Message::decode(&bytes, &CodecContext::default()) else {
        panic!()
    };
    assert_eq!(
        o.capabilities,
        vec![Capability::Unknown {
            code: 73,
            value: hex("03727472036c6162")
        }]
    );
}

#[test]
fn open_unknown_capabilities_are_kept_raw_in_order() {
    let bytes = open("0202 4600 0206 4504 00010103 0202 8000");
    let Ok(Message::Open(o)) = Message::decode(&bytes, &CodecContext::default()) else {
        panic!()
    };
    assert_eq!(
        o.capabilities,
        vec![
            Capability::Unknown {
                code: 70,
                value: vec![]
            },
            Capability::Unknown {
                code: 69,
                value: hex("00010103")
            },
            Capability::Unknown {
                code: 128,
                value: vec![]
            },
        ]
    );
}

#[test]
fn open_several_capabilities_in_one_parameter_are_all_read() {
    let bytes = open("0210 0104 00010001 0104 00020001 0200 0600");
    let Ok(Message::Open(o)) = Message::decode(&bytes, &CodecContext::default()) else {
        panic!()
    };
    assert_eq!(
        o.capabilities,
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::ExtendedMessage,
        ]
    );
}

#[test]
fn open_rfc_9072_extended_optional_parameters_are_accepted() {
    // Non-Ext OP Len 255, type 255, Extended Opt. Parm. Length 7, one parameter of type 2 with a
    // 2-octet length 4 holding route refresh and extended message.
    let bytes = message(1, "04 fde9 005a 0a000001 ff ff 0007 02 0004 0200 0600");
    let Ok(Message::Open(o)) = Message::decode(&bytes, &CodecContext::default()) else {
        panic!()
    };
    assert_eq!(
        o.capabilities,
        vec![Capability::RouteRefresh, Capability::ExtendedMessage]
    );
}

#[test]
fn open_empty_capabilities_parameter_is_accepted() {
    let bytes = open("0200");
    assert!(Message::decode(&bytes, &CodecContext::default()).is_ok());
}

// ---------------------------------------------------------------------------------------------
// UPDATE (RFC 4271 §6.3, RFC 7606, RFC 4760)

const ORIGIN: &str = "40010100";
const AS_PATH_EMPTY: &str = "400200";
const NEXT_HOP: &str = "400304c0000201";

/// An UPDATE with the given withdrawn-routes, attributes and NLRI hex, lengths computed.
fn update_parts(withdrawn: &str, attrs: &str, nlri: &str) -> Vec<u8> {
    let w = hex(withdrawn);
    let a = hex(attrs);
    update(&format!(
        "{:04x} {} {:04x} {} {}",
        w.len(),
        hex::encode(&w),
        a.len(),
        hex::encode(&a),
        nlri
    ))
}

#[test]
fn withdrawn_routes_length_beyond_the_message_resets_with_malformed_attribute_list() {
    let e = decode_err(&update("0010 0000"));
    assert_eq!(answer(&e), (3, 1, String::new()));
}

#[test]
fn total_attribute_length_beyond_the_message_resets_with_malformed_attribute_list() {
    let e = decode_err(&update("0000 0010 40010100"));
    assert_eq!(answer(&e), (3, 1, String::new()));
}

#[test]
fn attribute_header_cut_short_without_nlri_resets_with_malformed_attribute_list() {
    // RFC 7606 §4 makes it treat-as-withdraw, and with no NLRI §5.2 makes that a reset.
    // Extended length header cut short:
    let e = decode_err(&update("0000 0003 500101"));
    assert_eq!(answer(&e), (3, 1, String::new()));
    // ORIGIN claiming 2 octets with 1 left in the list:
    let e = decode_err(&update("0000 0004 40010200"));
    assert_eq!(answer(&e), (3, 1, String::new()));
}

#[test]
fn withdrawn_prefix_longer_than_32_resets_with_invalid_network_field() {
    let e = decode_err(&update_parts("21 0a000000 00", "", ""));
    assert_eq!(answer(&e), (3, 10, String::new()));
}

#[test]
fn nlri_prefix_running_past_the_message_resets_with_invalid_network_field() {
    let e = decode_err(&update_parts(
        "",
        &format!("{ORIGIN}{AS_PATH_EMPTY}{NEXT_HOP}"),
        "18 0a00",
    ));
    assert_eq!(answer(&e), (3, 10, String::new()));
}

#[test]
fn mp_reach_ipv6_prefix_longer_than_128_resets_with_invalid_network_field() {
    let e = decode_err(&update_parts(
        "",
        &format!(
            "{ORIGIN}{AS_PATH_EMPTY} 800e 16 0002 01 10 20010db8000000000000000000000001 00 81"
        ),
        "",
    ));
    assert_eq!(answer(&e), (3, 10, String::new()));
}

#[test]
fn mp_reach_ipv6_with_a_4_octet_next_hop_resets_with_optional_attribute_error() {
    let e = decode_err(&update_parts("", "800e 09 0002 01 04 c0000201 00", ""));
    assert_eq!(answer(&e), (3, 9, "800e0900020104c000020100".to_owned()));
}

#[test]
fn duplicate_mp_reach_resets_with_malformed_attribute_list() {
    let mp = "800e 0b 0001 01 04 c0000201 00 08 0a";
    let e = decode_err(&update_parts(
        "",
        &format!("{ORIGIN}{AS_PATH_EMPTY}{mp}{mp}"),
        "",
    ));
    assert_eq!(
        e,
        DecodeError::Update(UpdateError::DuplicateAttribute { type_code: 14 })
    );
    assert_eq!(answer(&e), (3, 1, String::new()));
}

#[test]
fn duplicate_mp_unreach_resets_with_malformed_attribute_list() {
    let mp = "800f 03 0002 01";
    let e = decode_err(&update_parts("", &format!("{mp}{mp}"), ""));
    assert_eq!(answer(&e), (3, 1, String::new()));
}

#[test]
fn duplicate_ordinary_attribute_keeps_the_first_and_discards_the_rest() {
    let u = decoded_update_both(&update_parts(
        "",
        &format!("{ORIGIN}{AS_PATH_EMPTY}{NEXT_HOP} 40010102 400304c0000202"),
        "08 0a",
    ));
    assert!(!u.treat_as_withdraw());
    assert_eq!(
        u.attributes,
        vec![
            PathAttribute::Origin(Origin::Igp),
            PathAttribute::AsPath(AsPath::default()),
            PathAttribute::NextHop(Ipv4Addr::new(192, 0, 2, 1)),
        ]
    );
    assert_eq!(
        u.recovered_errors,
        vec![
            discard(UpdateError::DuplicateAttribute { type_code: 1 }),
            discard(UpdateError::DuplicateAttribute { type_code: 3 }),
        ]
    );
}

#[test]
fn nlri_without_next_hop_is_treat_as_withdraw_with_missing_well_known_attribute() {
    let u = decoded_update_both(&update_parts(
        "",
        &format!("{ORIGIN}{AS_PATH_EMPTY}"),
        "08 0a",
    ));
    assert_eq!(
        u.recovered_errors,
        vec![twa(UpdateError::MissingWellKnownAttribute { type_code: 3 })]
    );
    assert_eq!(answer_of(&u), (3, 3, "03".to_owned()));
}

#[test]
fn nlri_without_any_attribute_misses_origin_as_path_and_next_hop() {
    let u = decoded_update_both(&update_parts("", "", "08 0a"));
    let missing: Vec<_> = u
        .recovered_errors
        .iter()
        .map(|e| e.error.type_code())
        .collect();
    assert_eq!(missing, vec![Some(1), Some(2), Some(3)]);
    assert!(u.treat_as_withdraw());
}

#[test]
fn mp_reach_without_origin_is_treat_as_withdraw_but_needs_no_next_hop_attribute() {
    let u = decoded_update_both(&update_parts(
        "",
        &format!("{AS_PATH_EMPTY} 800e 16 0002 01 10 20010db8000000000000000000000001 00 00"),
        "",
    ));
    assert_eq!(
        u.recovered_errors,
        vec![twa(UpdateError::MissingWellKnownAttribute { type_code: 1 })]
    );
}

#[test]
fn withdrawals_only_need_no_attributes() {
    let u = decoded_update_both(&update_parts("08 0a", "", ""));
    assert!(u.recovered_errors.is_empty());
}

#[test]
fn origin_value_3_is_treat_as_withdraw_with_invalid_origin() {
    let u = decoded_update_both(&update_parts(
        "",
        &format!("40010103 {AS_PATH_EMPTY}{NEXT_HOP}"),
        "08 0a",
    ));
    assert_eq!(
        u.recovered_errors,
        vec![twa(UpdateError::InvalidOrigin {
            value: 3,
            attribute: hex("40010103")
        })]
    );
    assert_eq!(answer_of(&u), (3, 6, "40010103".to_owned()));
}

#[test]
fn origin_of_length_2_is_treat_as_withdraw() {
    let u = decoded_update_both(&routes_with("4001020000"));
    assert_eq!(answer_of(&u), (3, 5, "4001020000".to_owned()));
    assert!(u.treat_as_withdraw());
}

#[test]
fn next_hop_of_length_5_is_treat_as_withdraw() {
    let u = decoded_update_both(&routes_with("400305c000020100"));
    assert!(u.treat_as_withdraw());
    assert_eq!(answer_of(&u).1, 5);
}

#[test]
fn next_hop_0_0_0_0_is_treat_as_withdraw_with_invalid_next_hop() {
    let u = decoded_update_both(&update_parts(
        "",
        &format!("{ORIGIN}{AS_PATH_EMPTY} 40030400000000"),
        "08 0a",
    ));
    assert_eq!(
        u.recovered_errors,
        vec![twa(UpdateError::InvalidNextHop {
            next_hop: Ipv4Addr::UNSPECIFIED,
            attribute: hex("40030400000000")
        })]
    );
    assert_eq!(answer_of(&u).1, 8);
}

#[test]
fn med_and_local_pref_of_wrong_length_are_treat_as_withdraw() {
    let u = decoded_update_both(&routes_with("800403000000"));
    assert!(u.treat_as_withdraw());
    assert_eq!(answer_of(&u).1, 5);
    // LOCAL_PREF only from an internal peer (RFC 7606 §7.5).
    let u = decoded_update(&routes_with("4005050000000000"), &ibgp());
    assert!(u.treat_as_withdraw());
    assert_eq!(answer_of(&u).1, 5);
}

#[test]
fn cluster_list_empty_or_ragged_is_treat_as_withdraw_from_ibgp() {
    for attr in ["800a00", "800a050a0000010a"] {
        let u = decoded_update(&routes_with(attr), &ibgp());
        assert!(u.treat_as_withdraw(), "{attr}");
        assert_eq!(answer_of(&u).1, 5);
    }
}

#[test]
fn empty_communities_and_large_communities_are_treat_as_withdraw() {
    for attr in ["c00800", "c02000", "c01000", "c01004 00000000"] {
        let u = decoded_update_both(&routes_with(attr));
        assert!(u.treat_as_withdraw(), "{attr}");
    }
}

#[test]
fn atomic_aggregate_with_a_value_is_discarded() {
    let u = decoded_update_both(&update_parts("", &format!("{ORIGIN} 40060100"), ""));
    assert!(!u.treat_as_withdraw());
    assert_eq!(u.attributes, vec![PathAttribute::Origin(Origin::Igp)]);
    assert_eq!(
        u.recovered_errors,
        vec![discard(UpdateError::AttributeLength {
            type_code: 6,
            length: 1,
            expected: "expected 0",
            attribute: hex("40060100")
        })]
    );
}

#[test]
fn aggregator_length_follows_the_negotiated_asn_width_and_is_discarded_otherwise() {
    let six = update_parts("", "c007 06 fde9 0a000001", "");
    let eight = update_parts("", "c007 08 0000fde9 0a000001", "");
    let [two, four] = contexts();
    assert!(decoded_update(&six, &two).recovered_errors.is_empty());
    assert!(decoded_update(&eight, &four).recovered_errors.is_empty());
    for (bytes, ctx) in [(&six, &four), (&eight, &two)] {
        let u = decoded_update(bytes, ctx);
        assert!(u.attributes.is_empty());
        assert_eq!(u.recovered_errors[0].action, ErrorAction::AttributeDiscard);
        assert!(!u.treat_as_withdraw());
    }
}

#[test]
fn malformed_as4_path_and_as4_aggregator_are_discarded() {
    for attr in ["c011 03 020100", "c012 06 fde90a000001"] {
        let u = decoded_update_both(&update_parts("", attr, ""));
        assert!(u.attributes.is_empty());
        assert_eq!(
            u.recovered_errors[0].action,
            ErrorAction::AttributeDiscard,
            "{attr}"
        );
        assert!(!u.treat_as_withdraw());
    }
}

#[test]
fn as_path_errors_of_each_kind_are_treat_as_withdraw() {
    for value in ["02 00", "05 01 fde9", "02", "02 02 fde9"] {
        let v = hex(value);
        let attr = format!("4002 {:02x} {}", v.len(), hex::encode(&v));
        let u = decoded_update(&routes_with(&attr), &CodecContext::default());
        assert!(
            matches!(
                u.recovered_errors.as_slice(),
                [RecoveredError {
                    action: ErrorAction::TreatAsWithdraw,
                    error: UpdateError::MalformedAsPath { type_code: 2, .. }
                }]
            ),
            "{value}: {u:?}"
        );
    }
}

#[test]
fn as_path_width_follows_the_context() {
    let bytes = routes_with("4002 06 0201 fa56ea01");
    let [two, four] = contexts();
    // With 2-octet ASNs the segment claims 1 ASN and 2 octets are left over: malformed.
    assert!(decoded_update(&bytes, &two).treat_as_withdraw());
    let u = decoded_update(&bytes, &four);
    assert!(u.recovered_errors.is_empty());
    assert!(u.attributes.contains(&PathAttribute::AsPath(AsPath {
        segments: vec![AsSegment::Sequence(vec![4200000001])]
    })));
}

#[test]
fn well_known_attribute_with_optional_flag_is_treat_as_withdraw_with_flags_error() {
    let u = decoded_update_both(&update_parts(
        "",
        &format!("c0010100 {AS_PATH_EMPTY}{NEXT_HOP}"),
        "08 0a",
    ));
    assert_eq!(
        u.recovered_errors,
        vec![twa(UpdateError::AttributeFlags {
            type_code: 1,
            flags: 0xc0,
            attribute: hex("c0010100")
        })]
    );
    assert_eq!(answer_of(&u), (3, 4, "c0010100".to_owned()));
}

#[test]
fn mp_reach_with_wrong_flags_is_still_parsed_and_treat_as_withdraw() {
    let u = decoded_update_both(&update_parts(
        "",
        &format!("{ORIGIN}{AS_PATH_EMPTY} c00e 0b 0001 01 04 c0000201 00 08 0a"),
        "",
    ));
    assert!(u.treat_as_withdraw());
    assert!(
        u.attributes
            .iter()
            .any(|a| matches!(a, PathAttribute::MpReach(mp) if mp.nlri.len() == 1))
    );
}

#[test]
fn partial_and_extended_length_bits_are_accepted_on_known_attributes() {
    let u = decoded_update_both(&routes_with("e0080400010002 d0200000"));
    // COMMUNITIES with Partial: fine. LARGE_COMMUNITIES with extended length 0: empty, so
    // malformed.
    assert!(u.attributes.contains(&PathAttribute::Communities(vec![
        ferrolb_bgpd::wire::Community(0x0001_0002)
    ])));
    assert!(u.treat_as_withdraw());
}

#[test]
fn mp_attributes_of_other_families_are_kept_raw() {
    let u = decoded_update_both(&update_parts("", "800e 0a 0019 46 04 c0000201 00 00", ""));
    assert_eq!(
        u.attributes,
        vec![PathAttribute::Unknown(RawAttribute {
            flags: 0x80,
            type_code: 14,
            value: hex("00194604c00002010000")
        })]
    );
}

#[test]
fn mp_reach_ipv4_nlri_with_ipv6_next_hop_is_accepted() {
    // RFC 8950.
    let u = decoded_update_both(&update_parts(
        "",
        &format!(
            "{ORIGIN}{AS_PATH_EMPTY} 800e 19 0001 01 10 20010db8000000000000000000000001 00 18 c63364"
        ),
        "",
    ));
    assert!(u.recovered_errors.is_empty());
    let [.., PathAttribute::MpReach(mp)] = u.attributes.as_slice() else {
        panic!("{u:?}")
    };
    assert!(matches!(
        mp.next_hop,
        NextHop::V6 {
            link_local: None,
            ..
        }
    ));
}

#[test]
fn host_bits_past_the_prefix_length_are_masked() {
    let u = decoded_update_both(&update_parts("18 0a0102 19 0a0102ff", "", ""));
    assert_eq!(
        u.withdrawn,
        vec![
            "10.1.2.0/24".parse().unwrap(),
            "10.1.2.128/25".parse().unwrap()
        ]
    );
}

#[test]
fn notification_data_is_kept_whole() {
    let data = "ab".repeat(300);
    let bytes = message(3, &format!("03 01 {data}"));
    let Ok(Message::Notification(n)) = Message::decode(&bytes, &CodecContext::default()) else {
        panic!()
    };
    assert_eq!(n, Notification::new(3, 1, hex(&data)));
}

#[test]
fn notification_with_invalid_shutdown_text_has_no_text() {
    for data in ["05 6162", "02 ff fe", "00", ""] {
        assert_eq!(
            Notification::new(6, 2, hex(data)).shutdown_text(),
            None,
            "{data}"
        );
    }
}

#[test]
fn encoding_too_much_is_an_error_never_a_wrapped_length() {
    // An UPDATE of 70000 octets with a context claiming more than the 2-octet length can hold.
    let huge = CodecContext {
        four_octet_as: true,
        max_message_len: 1 << 20,
        ..CodecContext::default()
    };
    let u = Message::Update(Update {
        attributes: vec![PathAttribute::Unknown(RawAttribute {
            flags: 0xc0,
            type_code: 99,
            value: vec![0; 70000],
        })],
        ..Update::default()
    });
    assert!(matches!(
        u.encode(&huge),
        Err(ferrolb_bgpd::wire::EncodeError::TooLong { max: 65535, .. })
    ));
}

#[test]
fn decoded_routes_of_a_valid_update_carry_no_recovered_errors() {
    let bytes = update_parts("", &format!("{ORIGIN}{AS_PATH_EMPTY}{NEXT_HOP}"), "08 0a");
    let u = decoded_update_both(&bytes);
    assert!(u.recovered_errors.is_empty());
    assert_eq!(u.nlri, vec!["10.0.0.0/8".parse().unwrap()]);
}

// ---------------------------------------------------------------------------------------------
// Findings of a hostile-peer probe: each test quotes the RFC text it holds us to.

/// An UPDATE of 4103 octets: 816 /32s with no attributes.
fn update_of_4103_octets() -> Vec<u8> {
    update(&format!("0000 0000 {}", "20 0a000001 ".repeat(816)))
}

// RFC 8654 §4: "An implementation that advertises the BGP Extended Message Capability MUST be
// capable of receiving a message with a length up to and including 65,535 octets."
#[test]
fn update_over_4096_is_received_once_we_advertised_extended_messages_even_if_the_peer_did_not() {
    let bytes = update_of_4103_octets();
    let ours_only = CodecContext {
        max_received_len: MAX_EXTENDED_MESSAGE_LEN,
        ..CodecContext::default()
    };
    assert_eq!(frame_len(&bytes[..19], &ours_only), Ok(None));
    assert_eq!(frame_len(&bytes, &ours_only), Ok(Some(4103)));
    let u = decoded_update(&bytes, &ours_only);
    assert_eq!(u.nlri.len(), 816);
    // RFC 8654 §4: "A BGP speaker MAY send BGP Extended Messages to a peer only if the BGP
    // Extended Message Capability was received from that peer."
    assert_eq!(
        Message::Update(u).encode(&ours_only),
        Err(ferrolb_bgpd::wire::EncodeError::TooLong {
            length: 4103,
            max: 4096
        })
    );
}

// RFC 8654 §5: "if a NOTIFICATION is to be sent to a BGP speaker that has not advertised the
// BGP Extended Message Capability, the size of the message MUST NOT exceed 4,096 octets."
#[test]
fn notification_quoting_an_attribute_too_large_for_4096_octets_is_cut_to_fit() {
    let attr = format!("5063 1388 {}", "00".repeat(5000));
    let ours_only = CodecContext {
        max_received_len: MAX_EXTENDED_MESSAGE_LEN,
        ..CodecContext::default()
    };
    let e = decode_err_ctx(&routes_with(&attr), &ours_only);
    let n = e.notification().unwrap();
    assert_eq!((n.code, n.subcode), (3, 2));
    assert_eq!(n.data.len(), 4096 - 21);
    assert_eq!(n.data[..4], hex("5063 1388")[..]);
    // It goes out to a peer that never advertised extended messages.
    let bytes = Message::Notification(n)
        .encode(&CodecContext::default())
        .unwrap();
    assert_eq!(bytes.len(), 4096);
}

/// ORIGIN, AS_PATH and NEXT_HOP, then `tail_hex` as the last bytes of the attribute list, then
/// the NLRI 10.0.0.0/8.
fn routes_with_attribute_tail(tail_hex: &str) -> Vec<u8> {
    update_parts(
        "",
        &format!("{ORIGIN}{AS_PATH_EMPTY}{NEXT_HOP} {tail_hex}"),
        "08 0a",
    )
}

fn mandatory_attributes() -> Vec<PathAttribute> {
    vec![
        PathAttribute::Origin(Origin::Igp),
        PathAttribute::AsPath(AsPath::default()),
        PathAttribute::NextHop(Ipv4Addr::new(192, 0, 2, 1)),
    ]
}

// RFC 7606 §4: "the length of the last encountered path attribute would cause the Total
// Attribute Length to be exceeded when parsing the enclosed path attributes. [...] the
// "treat-as-withdraw" approach MUST be used [...] and the Total Attribute Length MUST be relied
// upon to enable the beginning of the NLRI field to be located."
#[test]
fn last_attribute_overrunning_the_total_attribute_length_is_treat_as_withdraw() {
    // COMMUNITIES claims 8 octets; 4 are left in the list.
    let u = decoded_update_both(&routes_with_attribute_tail("c008 08 00010002"));
    assert_eq!(
        u.recovered_errors,
        vec![twa(UpdateError::MalformedAttributeList {
            reason: "attribute length exceeds the attribute list"
        })]
    );
    assert_eq!(answer_of(&u), (3, 1, String::new()));
    assert_eq!(u.attributes, mandatory_attributes());
    // The NLRI starts where the Total Attribute Length says, not where COMMUNITIES would end.
    assert_eq!(u.nlri, vec!["10.0.0.0/8".parse().unwrap()]);
}

// RFC 7606 §4: "fewer than three octets remain (or fewer than four octets, if the Attribute
// Flags field has the Extended Length bit set) when beginning to parse the attribute".
#[test]
fn fewer_octets_than_an_attribute_header_at_the_end_of_the_list_is_treat_as_withdraw() {
    for tail in ["c0", "c008", "d00800"] {
        let u = decoded_update_both(&routes_with_attribute_tail(tail));
        assert_eq!(
            u.recovered_errors,
            vec![twa(UpdateError::MalformedAttributeList {
                reason: "truncated attribute header"
            })],
            "{tail}"
        );
        assert_eq!(u.attributes, mandatory_attributes(), "{tail}");
        assert_eq!(u.nlri, vec!["10.0.0.0/8".parse().unwrap()], "{tail}");
    }
}

// RFC 7606 §7.11: a malformed MP_REACH_NLRI or MP_UNREACH_NLRI calls for AFI/SAFI disable or
// session reset; cut short, its routes cannot be known, so treat-as-withdraw cannot cover them.
#[test]
fn last_mp_reach_or_mp_unreach_cut_short_still_resets_with_malformed_attribute_list() {
    for tail in [
        "800e 10 0002 01 10 20010db8",
        "800f 05 0002",
        "900e 00",
        "800f",
    ] {
        let e = decode_err(&routes_with_attribute_tail(tail));
        assert!(
            matches!(
                e,
                DecodeError::Update(UpdateError::MalformedAttributeList { .. })
            ),
            "{tail}: {e:?}"
        );
        assert_eq!(answer(&e), (3, 1, String::new()), "{tail}");
    }
}

// RFC 7606 §5.2: "if any path attribute errors are encountered in such an UPDATE message [path
// attributes, but no NLRI, MP_REACH_NLRI or MP_UNREACH_NLRI] and if any encountered error
// specifies an error-handling approach other than "attribute discard", then the "session reset"
// approach MUST be used."
#[test]
fn attributes_without_nlri_and_a_treat_as_withdraw_error_reset_the_session() {
    let e = decode_err(&update_parts(
        "",
        &format!("{ORIGIN}{AS_PATH_EMPTY} c00800"),
        "",
    ));
    assert_eq!(answer(&e), (3, 5, "c00800".to_owned()));
    // Withdrawn routes are not NLRI: the same attributes beside them still reset.
    let e = decode_err(&update_parts(
        "08 0a",
        &format!("{ORIGIN}{AS_PATH_EMPTY} c00800"),
        "",
    ));
    assert_eq!(answer(&e), (3, 5, "c00800".to_owned()));
    // The first error that asked for more than discard names the NOTIFICATION.
    let e = decode_err(&update_parts("", "40060100 4001020000 c00800", ""));
    assert_eq!(answer(&e), (3, 5, "4001020000".to_owned()));
}

#[test]
fn attributes_without_nlri_and_only_attribute_discard_errors_are_survived() {
    let u = decoded_update_both(&update_parts(
        "",
        &format!("{ORIGIN} 40060100 {ORIGIN}"),
        "",
    ));
    assert!(!u.treat_as_withdraw());
    assert_eq!(u.attributes, vec![PathAttribute::Origin(Origin::Igp)]);
    assert_eq!(u.recovered_errors.len(), 2);
    assert!(
        u.recovered_errors
            .iter()
            .all(|e| e.action == ErrorAction::AttributeDiscard)
    );
}

#[test]
fn treat_as_withdraw_beside_mp_reach_or_mp_unreach_is_not_escalated() {
    // MP_UNREACH_NLRI withdrawing 2001:db8::/32 plus a malformed COMMUNITIES: there are routes
    // to treat as withdrawn, so no §5.2 reset.
    let u = decoded_update_both(&update_parts("", "800f 08 0002 01 20 20010db8 c00800", ""));
    assert!(u.treat_as_withdraw());
    assert!(
        u.attributes
            .iter()
            .any(|a| matches!(a, PathAttribute::MpUnreach(mp) if mp.withdrawn.len() == 1))
    );
    // Likewise an MP_REACH_NLRI (here IPv4 via MP, so no NEXT_HOP attribute is needed).
    let u = decoded_update_both(&update_parts(
        "",
        &format!("{ORIGIN}{AS_PATH_EMPTY} 800e 0b 0001 01 04 c0000201 00 08 0a c00800"),
        "",
    ));
    assert!(u.treat_as_withdraw());
}

// RFC 4271 §5: "Well-known attributes must be recognized by all BGP implementations."
// §6.3: "If any of the well-known mandatory attributes are not recognized, then the Error
// Subcode MUST be set to Unrecognized Well-known Attribute. The Data field MUST contain the
// unrecognized attribute (type, length, and value)."
#[test]
fn unknown_attribute_with_the_optional_bit_clear_is_unrecognized_well_known_attribute() {
    for (attr, flags) in [("40 63 02 abcd", 0x40u8), ("50 63 0002 abcd", 0x50)] {
        let e = decode_err(&routes_with(attr));
        assert_eq!(
            e,
            DecodeError::Update(UpdateError::UnrecognizedWellKnownAttribute {
                type_code: 99,
                attribute: hex(attr),
            }),
            "{flags:#04x}"
        );
        assert_eq!(answer(&e), (3, 2, hex::encode(hex(attr))));
    }
    // Without routes it is no different: this is a reset, not a recovered error.
    let e = decode_err(&update_parts("", "00 63 00", ""));
    assert_eq!(answer(&e), (3, 2, "006300".to_owned()));
}

#[test]
fn unknown_attribute_with_the_optional_bit_set_is_kept_raw() {
    let u = decoded_update_both(&routes_with("c0 63 02 abcd"));
    assert!(u.recovered_errors.is_empty());
    assert!(u.attributes.contains(&PathAttribute::Unknown(RawAttribute {
        flags: 0xc0,
        type_code: 99,
        value: hex("abcd"),
    })));
}

// RFC 7606 §7.5: "if the LOCAL_PREF attribute is received from an external neighbor, it SHALL
// be discarded using the approach of "attribute discard"; or if received from an internal
// neighbor, it SHALL be considered malformed if its length is not equal to 4. If malformed, the
// UPDATE message SHALL be handled using the approach of "treat-as-withdraw"." §7.9
// (ORIGINATOR_ID) and §7.10 (CLUSTER_LIST) say the same.
#[test]
fn malformed_local_pref_originator_id_and_cluster_list_from_ebgp_are_attribute_discard() {
    for (attr, type_code) in [
        ("4005 03 000064", 5u8),
        ("8009 03 c00002", 9),
        ("800a 00", 10),
        ("800a 05 c000020100", 10),
        // Wrong flags (RFC 7606 §3 (c) defers to the attribute's own rule).
        ("c005 04 00000064", 5),
        ("4009 04 c0000201", 9),
    ] {
        let u = decoded_update_both(&routes_with(attr));
        assert!(!u.treat_as_withdraw(), "{attr}");
        assert_eq!(u.attributes, mandatory_attributes(), "{attr}");
        assert!(
            matches!(
                u.recovered_errors.as_slice(),
                [RecoveredError { action: ErrorAction::AttributeDiscard, error }]
                    if error.type_code() == Some(type_code)
            ),
            "{attr}: {:?}",
            u.recovered_errors
        );
        assert_eq!(u.nlri, vec!["10.0.0.0/8".parse().unwrap()]);
    }
}

#[test]
fn malformed_local_pref_originator_id_and_cluster_list_from_ibgp_are_treat_as_withdraw() {
    for attr in [
        "4005 03 000064",
        "8009 03 c00002",
        "800a 00",
        "c005 04 00000064",
    ] {
        let u = decoded_update(&routes_with(attr), &ibgp());
        assert!(u.treat_as_withdraw(), "{attr}");
        assert!(
            u.recovered_errors
                .iter()
                .all(|e| e.action == ErrorAction::TreatAsWithdraw),
            "{attr}"
        );
    }
}

#[test]
fn well_formed_local_pref_from_ebgp_is_kept_for_the_caller_to_ignore() {
    let u = decoded_update_both(&routes_with("4005 04 00000064"));
    assert!(u.recovered_errors.is_empty());
    assert!(u.attributes.contains(&PathAttribute::LocalPref(100)));
}
