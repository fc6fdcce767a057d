//! Pure tests of the layout arithmetic, validation and range helpers.

use tessera::encode::classic::{
    AttrValue, ClassicError, Dim, Layout, NcType, Piece, Segment, Var, Version, validate_name,
    write_all,
};
use proptest::prelude::*;

const ALL_TYPES: [NcType; 11] = [
    NcType::Byte,
    NcType::Char,
    NcType::Short,
    NcType::Int,
    NcType::Float,
    NcType::Double,
    NcType::UByte,
    NcType::UShort,
    NcType::UInt,
    NcType::Int64,
    NcType::UInt64,
];

/// Deterministic data for variable `var`: byte `j` of its encoding.
fn data_byte(var: usize, j: u64) -> u8 {
    (j.wrapping_mul(31).wrapping_add(var as u64 * 101) % 251) as u8 + 1 // never 0
}

fn var_data(layout: &Layout, var: usize, elements: std::ops::Range<u64>) -> Vec<u8> {
    let size = layout.element_size(var) as u64;
    (elements.start * size..elements.end * size)
        .map(|j| data_byte(var, j))
        .collect()
}

// ------------------------------------------------------------ names

#[test]
fn name_validation() {
    for ok in [
        "x",
        "_x",
        "X1_y",
        "9lives",
        "lat-2",
        "a.b",
        "with space",
        "_FillValue",
        &"n".repeat(256),
    ] {
        assert!(
            validate_name("variable", ok).is_ok(),
            "{ok:?} should be valid"
        );
    }
    for bad in [
        "",
        "-x",
        ".x",
        " x",
        "x ",
        "a/b",
        "tab\there",
        "nul\0",
        "é",
        "x\n",
        &"n".repeat(257),
    ] {
        let err = validate_name("variable", bad).unwrap_err();
        assert!(
            matches!(err, ClassicError::InvalidName { .. }),
            "{bad:?}: {err}"
        );
        let msg = err.to_string();
        assert!(msg.starts_with("invalid variable name"), "{msg}");
    }
}

#[test]
fn invalid_names_are_refused_everywhere() {
    let bad = "bad/name";
    type Attrs = Vec<(String, AttrValue)>;
    let cases: Vec<(Vec<Dim>, Vec<Var>, Attrs)> = vec![
        (vec![Dim::new(bad, 1)], vec![], vec![]),
        (vec![], vec![Var::new(bad, NcType::Int, vec![])], vec![]),
        (vec![], vec![], vec![(bad.into(), "x".into())]),
        (
            vec![],
            vec![Var::new("v", NcType::Int, vec![]).with_attr(bad, 1i32)],
            vec![],
        ),
    ];
    for (dims, vars, gatts) in cases {
        let err = Layout::new(&dims, &vars, &gatts, None).unwrap_err();
        assert!(
            matches!(err, ClassicError::InvalidName { ref name, .. } if name == bad),
            "{err}"
        );
    }
}

#[test]
fn duplicate_names() {
    let dup_dim = Layout::new(&[Dim::new("x", 1), Dim::new("x", 2)], &[], &[], None);
    assert!(matches!(
        dup_dim,
        Err(ClassicError::DuplicateName {
            kind: "dimension",
            ..
        })
    ));
    let v = || Var::new("v", NcType::Int, vec![]);
    let dup_var = Layout::new(&[], &[v(), v()], &[], None);
    assert!(matches!(
        dup_var,
        Err(ClassicError::DuplicateName {
            kind: "variable",
            ..
        })
    ));
    let dup_attr = Layout::new(
        &[],
        &[v().with_attr("a", 1i32).with_attr("a", 2i32)],
        &[],
        None,
    );
    assert!(matches!(
        dup_attr,
        Err(ClassicError::DuplicateName {
            kind: "attribute",
            ..
        })
    ));
    // A dimension and a variable may share a name (coordinate variable), and
    // the same attribute name may appear on different variables and globally.
    let ok = Layout::new(
        &[Dim::new("x", 2)],
        &[
            Var::new("x", NcType::Double, vec![0]).with_attr("units", "m"),
            Var::new("y", NcType::Double, vec![0]).with_attr("units", "m"),
        ],
        &[("units".into(), "m".into())],
        None,
    );
    assert!(ok.is_ok());
}

// ------------------------------------------------------------ errors

#[test]
fn structural_errors() {
    let zero = Layout::new(&[Dim::new("t", 0)], &[], &[], None).unwrap_err();
    assert!(matches!(zero, ClassicError::ZeroLengthDimension { .. }));
    assert!(zero.to_string().contains("unlimited"));

    let unknown = Layout::new(
        &[Dim::new("x", 1)],
        &[Var::new("v", NcType::Int, vec![0, 1])],
        &[],
        None,
    );
    assert!(matches!(
        unknown,
        Err(ClassicError::UnknownDimension {
            index: 1,
            count: 1,
            ..
        })
    ));

    let overflow = Layout::new(
        &[Dim::new("x", u64::MAX / 2), Dim::new("y", 4)],
        &[Var::new("v", NcType::Byte, vec![0, 1])],
        &[],
        None,
    );
    assert!(matches!(overflow, Err(ClassicError::TooLarge { .. })));
}

#[test]
fn version_requirements() {
    for t in [
        NcType::UByte,
        NcType::UShort,
        NcType::UInt,
        NcType::Int64,
        NcType::UInt64,
    ] {
        let vars = [Var::new("v", t, vec![])];
        assert_eq!(
            Layout::new(&[], &vars, &[], None).unwrap().version(),
            Version::Cdf5
        );
        for requested in [Version::Cdf1, Version::Cdf2] {
            let err = Layout::new(&[], &vars, &[], Some(requested)).unwrap_err();
            assert!(matches!(err, ClassicError::RequiresCdf5 { .. }), "{err}");
            assert!(err.to_string().contains(t.cdl_name()), "{err}");
        }
    }
    for attr in [
        AttrValue::U8(vec![1]),
        AttrValue::U16(vec![]),
        AttrValue::U32(vec![1]),
        AttrValue::I64(vec![1]),
        AttrValue::U64(vec![1]),
    ] {
        let gatts = [("a".to_owned(), attr.clone())];
        assert_eq!(
            Layout::new(&[], &[], &gatts, None).unwrap().version(),
            Version::Cdf5
        );
        let vars = [Var::new("v", NcType::Int, vec![]).with_attr("a", attr)];
        assert_eq!(
            Layout::new(&[], &vars, &[], None).unwrap().version(),
            Version::Cdf5
        );
        assert!(matches!(
            Layout::new(&[], &vars, &[], Some(Version::Cdf2)),
            Err(ClassicError::RequiresCdf5 { .. })
        ));
    }
    // Classic types only: CDF-2 by default.
    let vars: Vec<Var> = ALL_TYPES[..6]
        .iter()
        .enumerate()
        .map(|(i, &t)| Var::new(format!("v{i}"), t, vec![]))
        .collect();
    assert_eq!(
        Layout::new(&[], &vars, &[], None).unwrap().version(),
        Version::Cdf2
    );
    // Long dimensions need CDF-5.
    let long = [Dim::new("n", i32::MAX as u64 + 1)];
    assert_eq!(
        Layout::new(&long, &[], &[], None).unwrap().version(),
        Version::Cdf5
    );
    assert!(matches!(
        Layout::new(&long, &[], &[], Some(Version::Cdf2)),
        Err(ClassicError::RequiresCdf5 { .. })
    ));
    assert_eq!(
        Layout::new(&[Dim::new("n", i32::MAX as u64)], &[], &[], None)
            .unwrap()
            .version(),
        Version::Cdf2
    );
}

#[test]
fn variable_size_limits() {
    // Exactly at the CDF-2 limit: still CDF-2, vsize fits the 32-bit field.
    let dims = [
        Dim::new("a", 2),
        Dim::new("b", (tessera::encode::classic::CDF2_MAX_VAR_LEN) / 2),
    ];
    let at_limit = [
        Var::new("v", NcType::Byte, vec![0, 1]),
        Var::new("w", NcType::Int, vec![]),
    ];
    let l = Layout::new(&dims, &at_limit, &[], None).unwrap();
    assert_eq!(l.version(), Version::Cdf2);
    assert_eq!(l.vsize(0), u32::MAX as u64 - 3);
    assert_eq!(l.begin(1), l.begin(0) + l.vsize(0));

    // One byte more: CDF-5 automatically; explicit CDF-2 only if last.
    let dims = [
        Dim::new("a", 3),
        Dim::new("b", (tessera::encode::classic::CDF2_MAX_VAR_LEN + 3) / 3),
    ];
    let big_first = [
        Var::new("v", NcType::Byte, vec![0, 1]),
        Var::new("w", NcType::Int, vec![]),
    ];
    assert!(3 * dims[1].len > tessera::encode::classic::CDF2_MAX_VAR_LEN);
    assert_eq!(
        Layout::new(&dims, &big_first, &[], None).unwrap().version(),
        Version::Cdf5
    );
    let err = Layout::new(&dims, &big_first, &[], Some(Version::Cdf2)).unwrap_err();
    assert!(matches!(err, ClassicError::TooLarge { .. }), "{err}");
    let big_last = [
        Var::new("w", NcType::Int, vec![]),
        Var::new("v", NcType::Byte, vec![0, 1]),
    ];
    let l = Layout::new(&dims, &big_last, &[], Some(Version::Cdf2)).unwrap();
    assert_eq!(l.total_len(), l.begin(1) + l.vsize(1));
    assert!(l.vsize(1) > u32::MAX as u64);

    // CDF-1: 2 GiB - 4 per variable, and begins must fit in 31 bits.
    let dims = [Dim::new("n", tessera::encode::classic::CDF1_MAX_VAR_LEN + 1)];
    let two = [
        Var::new("v", NcType::Byte, vec![0]),
        Var::new("w", NcType::Byte, vec![0]),
    ];
    assert!(matches!(
        Layout::new(&dims, &two, &[], Some(Version::Cdf1)),
        Err(ClassicError::TooLarge { .. })
    ));
    let l = Layout::new(&dims, &two[..1], &[], Some(Version::Cdf1)).unwrap();
    assert_eq!(l.version(), Version::Cdf1);
    let dims = [Dim::new("n", tessera::encode::classic::CDF1_MAX_VAR_LEN)];
    let three = [
        Var::new("u", NcType::Byte, vec![0]),
        Var::new("v", NcType::Byte, vec![0]),
        Var::new("w", NcType::Byte, vec![0]),
    ];
    let err = Layout::new(&dims, &three, &[], Some(Version::Cdf1)).unwrap_err();
    assert!(matches!(err, ClassicError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("offset"), "{err}");
    assert_eq!(
        Layout::new(&dims, &three, &[], None).unwrap().version(),
        Version::Cdf2
    );
}

#[test]
fn text_attributes_are_nc_char() {
    let gatts = [
        ("e".to_owned(), AttrValue::Text(String::new())),
        ("t".to_owned(), "abcde".into()),
    ];
    let l = Layout::new(&[], &[], &gatts, Some(Version::Cdf2)).unwrap();
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &b"CDF\x02"[..], &[0; 4], &[0; 8],
        &[0, 0, 0, 0x0C], &[0, 0, 0, 2],
        &[0, 0, 0, 1], b"e\0\0\0", &[0, 0, 0, 2], &[0, 0, 0, 0],
        &[0, 0, 0, 1], b"t\0\0\0", &[0, 0, 0, 2], &[0, 0, 0, 5], b"abcde\0\0\0",
        &[0; 8],
    ]
    .concat();
    assert_eq!(l.header(), expected.as_slice());
    // CDF-5 widens the counts but not the type code.
    let l = Layout::new(&[], &[], &gatts[1..], Some(Version::Cdf5)).unwrap();
    let h = l.header();
    let at = 4 + 8 + 4 + 8; // magic, numrecs, ABSENT dim_list
    assert_eq!(&h[at..at + 12], &[0, 0, 0, 0x0C, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(
        &h[at + 12..at + 24],
        &[0, 0, 0, 0, 0, 0, 0, 1, b't', 0, 0, 0]
    );
    assert_eq!(&h[at + 24..at + 36], &[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 5]);
}

#[test]
fn write_checks_data_length() {
    let l = Layout::new(
        &[Dim::new("x", 3)],
        &[Var::new("v", NcType::Short, vec![0])],
        &[],
        None,
    )
    .unwrap();
    let err = write_all(&l, |_| vec![0; 5]).unwrap_err();
    assert!(
        matches!(
            err,
            ClassicError::DataLength {
                var: 0,
                expected: 6,
                actual: 5
            }
        ),
        "{err}"
    );
    let err = l
        .write_range(Vec::new(), 0..l.total_len(), |_, _| vec![0; 1])
        .unwrap_err();
    assert!(matches!(err, ClassicError::DataLength { .. }), "{err}");
    let mut be = Vec::new();
    tessera::encode::classic::encode_be(&[1i16, -2, 3], &mut be);
    let file = write_all(&l, |_| be.clone()).unwrap();
    assert_eq!(&file[file.len() - 8..], &[0, 1, 0xFF, 0xFE, 0, 3, 0, 0]);
}

#[test]
fn encode_be_all_types() {
    let mut out = Vec::new();
    tessera::encode::classic::encode_be(&[-2i8], &mut out);
    tessera::encode::classic::encode_be(&[0xABu8], &mut out);
    tessera::encode::classic::encode_be(&[-2i16], &mut out);
    tessera::encode::classic::encode_be(&[0x1234u16], &mut out);
    tessera::encode::classic::encode_be(&[-2i32], &mut out);
    tessera::encode::classic::encode_be(&[0x1234_5678u32], &mut out);
    tessera::encode::classic::encode_be(&[-2i64], &mut out);
    tessera::encode::classic::encode_be(&[0x0102_0304_0506_0708u64], &mut out);
    tessera::encode::classic::encode_be(&[1.0f32], &mut out);
    tessera::encode::classic::encode_be(&[-2.0f64], &mut out);
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        0xFE, 0xAB, 0xFF, 0xFE, 0x12, 0x34, 0xFF, 0xFF, 0xFF, 0xFE, 0x12, 0x34, 0x56, 0x78,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 1, 2, 3, 4, 5, 6, 7, 8,
        0x3F, 0x80, 0, 0, 0xC0, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(out, expected);
}

#[test]
fn element_index_is_row_major() {
    let dims = [Dim::new("a", 2), Dim::new("b", 3), Dim::new("c", 4)];
    let l = Layout::new(
        &dims,
        &[
            Var::new("v", NcType::Float, vec![0, 1, 2]),
            Var::new("s", NcType::Int, vec![]),
        ],
        &[],
        None,
    )
    .unwrap();
    assert_eq!(l.element_index(0, &[0, 0, 0]), Some(0));
    assert_eq!(l.element_index(0, &[0, 0, 3]), Some(3));
    assert_eq!(l.element_index(0, &[0, 1, 0]), Some(4));
    assert_eq!(l.element_index(0, &[1, 2, 3]), Some(23));
    assert_eq!(l.element_index(0, &[2, 0, 0]), None);
    assert_eq!(l.element_index(0, &[0, 0]), None);
    assert_eq!(l.element_index(1, &[]), Some(0));
    assert_eq!(l.element_offset(0, 23), l.begin(0) + 23 * 4);
    assert_eq!(l.num_elements(1), 1);
    assert_eq!(l.shape(0), &[2, 3, 4]);
}

// ------------------------------------------------------------ proptest

#[derive(Debug, Clone)]
struct Spec {
    dims: Vec<Dim>,
    vars: Vec<Var>,
    gatts: Vec<(String, AttrValue)>,
    version: Option<Version>,
}

fn spec(max_dim: u64) -> impl Strategy<Value = Spec> {
    (
        prop::collection::vec(1..=max_dim, 1..5),
        prop::collection::vec(
            (
                0..11usize,
                prop::collection::vec(any::<prop::sample::Index>(), 0..4),
                0..3usize,
            ),
            0..7,
        ),
        0..4usize,
        0..3usize,
    )
        .prop_map(|(dim_lens, var_specs, n_gatts, version)| {
            let dims: Vec<Dim> = dim_lens
                .iter()
                .enumerate()
                .map(|(i, &n)| Dim::new(format!("d{i}"), n))
                .collect();
            let vars: Vec<Var> = var_specs
                .iter()
                .enumerate()
                .map(|(i, (t, idx, n_attrs))| {
                    let mut v = Var::new(
                        format!("v{i}"),
                        ALL_TYPES[*t],
                        idx.iter().map(|ix| ix.index(dims.len())).collect(),
                    );
                    for a in 0..*n_attrs {
                        v = v.with_attr(format!("a{a}"), AttrValue::Text("x".repeat(a + i)));
                    }
                    v
                })
                .collect();
            let gatts = (0..n_gatts)
                .map(|g| (format!("g{g}"), AttrValue::I16(vec![g as i16; g])))
                .collect();
            let needs_cdf5 = vars.iter().any(|v| v.dtype.requires_cdf5());
            let version = match version {
                0 => None,
                1 => Some(Version::Cdf5),
                _ if needs_cdf5 => Some(Version::Cdf5),
                _ => Some(Version::Cdf1),
            };
            Spec {
                dims,
                vars,
                gatts,
                version,
            }
        })
}

fn check_layout_invariants(l: &Layout) {
    let mut pos = l.header().len() as u64;
    assert_eq!(pos % 4, 0);
    for v in 0..l.num_vars() {
        assert_eq!(l.begin(v), pos);
        assert_eq!(l.data_len(v), l.num_elements(v) * l.element_size(v) as u64);
        assert_eq!(l.num_elements(v), l.shape(v).iter().product::<u64>());
        assert_eq!(l.vsize(v), l.data_len(v).div_ceil(4) * 4);
        assert_eq!(l.padding(v) as u64, l.vsize(v) - l.data_len(v));
        pos += l.vsize(v);
    }
    assert_eq!(l.total_len(), pos);
}

/// `segment_at(offset)` agrees with `element_offset`, `begin` and `padding`.
fn check_segment(l: &Layout, offset: u64) {
    match l.segment_at(offset) {
        None => assert!(offset >= l.total_len()),
        Some(Segment::Header { offset: o }) => {
            assert_eq!(o, offset);
            assert!(offset < l.header().len() as u64);
        }
        Some(Segment::Data { var, element, byte }) => {
            assert!(byte < l.element_size(var));
            assert!(element < l.num_elements(var));
            assert_eq!(l.element_offset(var, element) + byte as u64, offset);
        }
        Some(Segment::Padding { var, byte }) => {
            assert!(byte < l.padding(var));
            assert_eq!(l.begin(var) + l.data_len(var) + byte as u64, offset);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn small_files_are_consistent(spec in spec(9), ranges in prop::collection::vec((any::<prop::sample::Index>(), 0..80u64), 1..10)) {
        let l = Layout::new(&spec.dims, &spec.vars, &spec.gatts, spec.version).unwrap();
        if let Some(v) = spec.version { prop_assert_eq!(l.version(), v); }
        check_layout_invariants(&l);
        let full = write_all(&l, |v| var_data(&l, v, 0..l.num_elements(v))).unwrap();
        prop_assert_eq!(full.len() as u64, l.total_len());
        prop_assert!(l.segment_at(l.total_len()).is_none());

        // Every byte of the file is explained by segment_at.
        for offset in 0..l.total_len() {
            check_segment(&l, offset);
            let expected = match l.segment_at(offset).unwrap() {
                Segment::Header { offset } => l.header()[offset as usize],
                Segment::Data { var, element, byte } => data_byte(var, element * l.element_size(var) as u64 + byte as u64),
                Segment::Padding { .. } => 0,
            };
            prop_assert_eq!(full[offset as usize], expected, "offset {}", offset);
        }

        // Any byte range can be produced on its own, asking only for needed elements.
        for (start, len) in ranges {
            let start = start.index(l.total_len() as usize + 1) as u64;
            let end = start + len;
            let mut out = Vec::new();
            let mut asked = 0u64;
            let n = l.write_range(&mut out, start..end, |var, els| {
                assert!(els.start < els.end && els.end <= l.num_elements(var));
                asked += (els.end - els.start) * l.element_size(var) as u64;
                var_data(&l, var, els)
            }).unwrap();
            let clamped = &full[start as usize..(end.min(l.total_len())) as usize];
            prop_assert_eq!(n, clamped.len() as u64);
            prop_assert_eq!(out.as_slice(), clamped);
            // At most one partial element at each end of each variable touched.
            let pieces = l.pieces(start..end);
            let data_pieces = pieces.iter().filter(|p| matches!(p, Piece::Data { .. })).count() as u64;
            prop_assert!(asked <= len + data_pieces * 2 * 8);
            prop_assert!(pieces.iter().all(|p| !p.is_empty(&l)));
        }
    }

    #[test]
    fn huge_layouts_are_consistent(spec in spec(3_000_000_000), offsets in prop::collection::vec(any::<u64>(), 1..50)) {
        let l = match Layout::new(&spec.dims, &spec.vars, &spec.gatts, None) {
            Ok(l) => l,
            // Only sizes beyond the 63-bit limit may fail here.
            Err(e) => {
                prop_assert!(matches!(e, ClassicError::TooLarge { .. }), "{}", e);
                return Ok(());
            }
        };
        check_layout_invariants(&l);
        if l.vars_exceed(Version::Cdf2) { prop_assert_eq!(l.version(), Version::Cdf5); }
        for o in offsets {
            let offset = o % (l.total_len() + 1);
            check_segment(&l, offset);
            // A one-byte range at that offset is described by exactly one piece.
            let pieces = l.pieces(offset..offset + 1);
            prop_assert_eq!(pieces.len(), usize::from(offset < l.total_len()));
            let total: u64 = pieces.iter().map(|p| p.len(&l)).sum();
            prop_assert_eq!(total, u64::from(offset < l.total_len()));
        }
    }
}

trait Exceeds {
    fn vars_exceed(&self, v: Version) -> bool;
}

impl Exceeds for Layout {
    fn vars_exceed(&self, v: Version) -> bool {
        (0..self.num_vars()).any(|i| self.data_len(i) > v.max_var_len())
    }
}
