//! Files written by the encoder are read back with the reference tools:
//! `ncdump` (netCDF-C, Debian's `netcdf-bin`) and Python's `netCDF4`.
//!
//! These tests fail if the tools are missing, unless the environment variable
//! `TESSERA_ALLOW_MISSING_TOOLS=1` is set, in which case they are skipped.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use tessera::encode::classic::{AttrValue, Dim, Layout, NcType, Var, Version, encode_be, write_all};

// ---------------------------------------------------------------- tools

fn tools_available() -> bool {
    let ok = crate::common::command("ncdump")
        .arg("-k")
        .arg("/nonexistent")
        .output()
        .is_ok()
        && crate::common::command("python3")
            .args(["-c", "import netCDF4, numpy"])
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("TESSERA_ALLOW_MISSING_TOOLS").is_some(),
            "ncdump (apt: netcdf-bin) and python3 with netCDF4 are required; \
             set TESSERA_ALLOW_MISSING_TOOLS=1 to skip these tests"
        );
        eprintln!("skipping: ncdump or python3 netCDF4 missing");
    }
    ok
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = crate::common::command(cmd).args(args).output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn ncdump(args: &[&str], path: &Path) -> String {
    let mut all: Vec<&str> = args.to_vec();
    all.push(path.to_str().unwrap());
    run("ncdump", &all)
}

/// Values printed by `ncdump -v var` for `var`, as strings.
fn ncdump_values(path: &Path, var: &str) -> Vec<String> {
    let out = ncdump(&["-v", var], path);
    let data = &out[out.find("\ndata:").expect("data section")..];
    let start = data.find(&format!("\n {var} =")).expect("variable in data") + var.len() + 4;
    let body = &data[start..start + data[start..].find(';').unwrap()];
    body.split(',').map(|s| s.trim().to_owned()).collect()
}

// ---------------------------------------------------------------- test data

struct TestVar {
    var: Var,
    data: AttrValue,
}

/// Deterministic values of `dtype`, including extremes and float specials.
fn gen_values(dtype: NcType, n: usize, seed: i64) -> AttrValue {
    let k = |i: usize| (i as i64) * 7919 + seed * 104_729 - 50_000;
    macro_rules! ints {
        ($t:ty, $variant:ident) => {{
            let mut v: Vec<$t> = (0..n).map(|i| k(i) as $t).collect();
            for (slot, x) in v.iter_mut().zip([<$t>::MIN, <$t>::MAX, 0 as $t]) {
                *slot = x;
            }
            AttrValue::$variant(v)
        }};
    }
    macro_rules! floats {
        ($t:ty, $variant:ident) => {{
            let specials = [
                <$t>::NAN,
                <$t>::INFINITY,
                <$t>::NEG_INFINITY,
                -0.0,
                <$t>::MIN_POSITIVE,
                <$t>::MIN_POSITIVE / 8.0, // subnormal
                <$t>::MAX,
                <$t>::MIN,
            ];
            let mut v: Vec<$t> = (0..n).map(|i| k(i) as $t * 0.1).collect();
            for (slot, x) in v.iter_mut().zip(specials) {
                *slot = x;
            }
            AttrValue::$variant(v)
        }};
    }
    match dtype {
        NcType::Byte => ints!(i8, I8),
        NcType::UByte => ints!(u8, U8),
        NcType::Short => ints!(i16, I16),
        NcType::UShort => ints!(u16, U16),
        NcType::Int => ints!(i32, I32),
        NcType::UInt => ints!(u32, U32),
        NcType::Int64 => ints!(i64, I64),
        NcType::UInt64 => ints!(u64, U64),
        NcType::Float => floats!(f32, F32),
        NcType::Double => floats!(f64, F64),
        NcType::Char => AttrValue::Text(
            (0..n)
                .map(|i| {
                    char::from(b"abcdefghijklmnopqrstuvwxyz0123456789 _-"[(i + seed as usize) % 39])
                })
                .collect(),
        ),
    }
}

fn attrs_of(types: &[NcType], seed: i64) -> Vec<(String, AttrValue)> {
    let mut attrs: Vec<(String, AttrValue)> = vec![
        ("units".into(), "m s-1".into()),
        ("empty_text".into(), "".into()),
        ("utf8_text".into(), "héllo ✓ – \"quoted\"\nline".into()),
    ];
    for (i, &t) in types.iter().enumerate() {
        if t == NcType::Char {
            continue;
        }
        // single value, several values (odd count => padding for 1-2 byte types)
        attrs.push((
            format!("one_{}", t.cdl_name()),
            gen_values(t, 1, seed + i as i64),
        ));
        attrs.push((
            format!("many_{}", t.cdl_name()),
            gen_values(t, 5, seed + i as i64),
        ));
    }
    attrs
}

fn build(
    dims: &[Dim],
    vars: &[TestVar],
    gatts: &[(String, AttrValue)],
    version: Option<Version>,
) -> (Layout, Vec<u8>) {
    let defs: Vec<Var> = vars.iter().map(|v| v.var.clone()).collect();
    let layout = Layout::new(dims, &defs, gatts, version).expect("layout");
    let bytes = write_all(&layout, |i| {
        let mut out = Vec::new();
        vars[i].data.encode(&mut out);
        out
    })
    .expect("write");
    assert_eq!(bytes.len() as u64, layout.total_len());
    (layout, bytes)
}

// ------------------------------------------------ python expectations file

fn py_kind(v: &AttrValue) -> &'static str {
    match v {
        AttrValue::Text(_) => "text",
        AttrValue::I8(_) => "int8",
        AttrValue::U8(_) => "uint8",
        AttrValue::I16(_) => "int16",
        AttrValue::U16(_) => "uint16",
        AttrValue::I32(_) => "int32",
        AttrValue::U32(_) => "uint32",
        AttrValue::I64(_) => "int64",
        AttrValue::U64(_) => "uint64",
        AttrValue::F32(_) => "float32",
        AttrValue::F64(_) => "float64",
    }
}

/// Python literal of the values: hex string for text, list of ints otherwise
/// (floats as their IEEE bit patterns, so the comparison is exact).
fn py_values(v: &AttrValue) -> String {
    fn list<T: ToString>(it: impl Iterator<Item = T>) -> String {
        format!(
            "[{}]",
            it.map(|x| x.to_string()).collect::<Vec<_>>().join(",")
        )
    }
    match v {
        AttrValue::Text(s) => format!(
            "'{}'",
            s.bytes().map(|b| format!("{b:02x}")).collect::<String>()
        ),
        AttrValue::I8(v) => list(v.iter()),
        AttrValue::U8(v) => list(v.iter()),
        AttrValue::I16(v) => list(v.iter()),
        AttrValue::U16(v) => list(v.iter()),
        AttrValue::I32(v) => list(v.iter()),
        AttrValue::U32(v) => list(v.iter()),
        AttrValue::I64(v) => list(v.iter()),
        AttrValue::U64(v) => list(v.iter()),
        AttrValue::F32(v) => list(v.iter().map(|x| x.to_bits())),
        AttrValue::F64(v) => list(v.iter().map(|x| x.to_bits())),
    }
}

fn py_attrs(attrs: &[(String, AttrValue)]) -> String {
    let items: Vec<String> = attrs
        .iter()
        .map(|(n, v)| format!("({n:?}, {:?}, {})", py_kind(v), py_values(v)))
        .collect();
    format!("[{}]", items.join(",\n  "))
}

const CHECKER: &str = r#"
import sys
import numpy as np
import netCDF4

ns = {}
exec(open(sys.argv[2]).read(), ns)
errors = []

def check(cond, msg):
    if not cond:
        errors.append(msg)

BITS = {'float32': np.uint32, 'float64': np.uint64}

def compare(actual, kind, expected, what):
    if kind == 'text':
        exp = bytes.fromhex(expected).decode('utf-8')
        check(isinstance(actual, str) and actual == exp, f'{what}: {actual!r} != {exp!r}')
        return
    if kind == 'char':
        got = np.asarray(actual).tobytes().hex()
        check(got == expected, f'{what}: char data {got} != {expected}')
        return
    a = np.atleast_1d(np.asarray(actual))
    check(a.dtype == np.dtype(kind), f'{what}: dtype {a.dtype} != {kind}')
    flat = a.ravel()
    if kind in BITS:
        flat = flat.view(BITS[kind])
    got = [int(x) for x in flat]
    check(got == expected, f'{what}: {got[:10]}... != {expected[:10]}... (len {len(got)} vs {len(expected)})')

def compare_attrs(obj, expected, what):
    check(list(obj.ncattrs()) == [n for n, _, _ in expected],
          f'{what}: attribute names {list(obj.ncattrs())}')
    for name, kind, values in expected:
        if name in obj.ncattrs():
            compare(obj.getncattr(name), kind, values, f'{what}:{name}')

ds = netCDF4.Dataset(sys.argv[1])
ds.set_auto_maskandscale(False)
ds.set_auto_chartostring(False)
check(ds.data_model == ns['FORMAT'], f'format {ds.data_model} != {ns["FORMAT"]}')
dims = [(d.name, len(d), d.isunlimited()) for d in ds.dimensions.values()]
check(dims == [(n, l, False) for n, l in ns['DIMS']], f'dims {dims}')
compare_attrs(ds, ns['GATTS'], 'global')
check(list(ds.variables) == [v[0] for v in ns['VARS']], f'variables {list(ds.variables)}')
for name, kind, vdims, shape, values, attrs in ns['VARS']:
    if name not in ds.variables:
        continue
    v = ds.variables[name]
    check(v.dimensions == tuple(vdims), f'{name}: dims {v.dimensions}')
    check(v.shape == tuple(shape), f'{name}: shape {v.shape}')
    if kind == 'char':
        check(v.dtype == np.dtype('S1'), f'{name}: dtype {v.dtype}')
    compare(v[...], kind, values, name)
    compare_attrs(v, attrs, name)
ds.close()
if errors:
    print('\n'.join(errors))
    sys.exit(1)
print('OK', len(ns['VARS']), 'variables checked')
"#;

fn python_check(
    path: &Path,
    dims: &[Dim],
    vars: &[TestVar],
    gatts: &[(String, AttrValue)],
    version: Version,
) {
    let format = match version {
        Version::Cdf1 => "NETCDF3_CLASSIC",
        Version::Cdf2 => "NETCDF3_64BIT_OFFSET",
        Version::Cdf5 => "NETCDF3_64BIT_DATA",
    };
    let mut py = format!("FORMAT = {format:?}\n");
    let dim_items: Vec<String> = dims
        .iter()
        .map(|d| format!("({:?}, {})", d.name, d.len))
        .collect();
    writeln!(py, "DIMS = [{}]", dim_items.join(", ")).unwrap();
    writeln!(py, "GATTS = {}", py_attrs(gatts)).unwrap();
    py.push_str("VARS = [\n");
    for tv in vars {
        let v = &tv.var;
        let kind = if v.dtype == NcType::Char {
            "char"
        } else {
            py_kind(&tv.data)
        };
        let vdims: Vec<String> = v
            .dims
            .iter()
            .map(|&d| format!("{:?}", dims[d].name))
            .collect();
        let shape: Vec<String> = v.dims.iter().map(|&d| dims[d].len.to_string()).collect();
        writeln!(
            py,
            " ({:?}, {kind:?}, [{}], [{}], {}, {}),",
            v.name,
            vdims.join(","),
            shape.join(","),
            py_values(&tv.data),
            py_attrs(&v.attrs)
        )
        .unwrap();
    }
    py.push_str("]\n");
    let expected = path.with_extension("expected.py");
    std::fs::write(&expected, py).unwrap();
    let out = run(
        "python3",
        &[
            "-c",
            CHECKER,
            path.to_str().unwrap(),
            expected.to_str().unwrap(),
        ],
    );
    assert!(out.starts_with("OK"), "{out}");
}

// ---------------------------------------------------------------- tests

fn dataset(types: &[NcType]) -> (Vec<Dim>, Vec<TestVar>, Vec<(String, AttrValue)>) {
    let dims = vec![
        Dim::new("x", 3),
        Dim::new("y", 5),
        Dim::new("odd", 7),
        Dim::new("one", 1),
        Dim::new("lat-2.d", 2), // hyphen and dot are legal in netCDF names
    ];
    let shapes: [Vec<usize>; 5] = [vec![0, 1], vec![2], vec![], vec![1, 3, 0], vec![4, 4]];
    let mut vars = Vec::new();
    for (i, &t) in types.iter().enumerate() {
        for (j, shape) in shapes.iter().enumerate() {
            let n: u64 = shape.iter().map(|&d| dims[d].len).product();
            let mut var = Var::new(format!("{}_{j}", t.cdl_name()), t, shape.clone());
            if j == 0 {
                var.attrs = attrs_of(types, (i * 10 + j) as i64);
            } else {
                var = var.with_attr("long_name", format!("{} variable #{j}", t.cdl_name()));
            }
            let data = gen_values(t, n as usize, (i * 10 + j) as i64);
            vars.push(TestVar { var, data });
        }
    }
    let mut gatts = attrs_of(types, 99);
    gatts.insert(0, ("title".into(), "tessera test file".into()));
    (dims, vars, gatts)
}

const CDF2_TYPES: [NcType; 6] = [
    NcType::Byte,
    NcType::Char,
    NcType::Short,
    NcType::Int,
    NcType::Float,
    NcType::Double,
];

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

fn roundtrip(
    types: &[NcType],
    version: Option<Version>,
    expected: Version,
) -> (tempfile::TempDir, std::path::PathBuf, Layout) {
    let (dims, vars, gatts) = dataset(types);
    let (layout, bytes) = build(&dims, &vars, &gatts, version);
    assert_eq!(layout.version(), expected);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.nc");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), layout.total_len());

    assert_eq!(ncdump(&["-k"], &path).trim(), expected.ncdump_kind());
    python_check(&path, &dims, &vars, &gatts, expected);

    // ncdump sees the same header and values.
    let cdl = ncdump(&["-h"], &path);
    for needle in [
        "\tx = 3 ;",
        "\tint int_0(x, y) ;",
        "\t\tint_0:units = \"m s-1\" ;",
        "\t\tint_0:empty_text = \"\" ;",
        "\t\tshort_2:long_name = \"short variable #2\" ;",
        "\tdouble double_2 ;",
        "\t\t:title = \"tessera test file\" ;",
        "\t\t:one_short = -32768s ;",
        "\t\t:many_byte = -128b, 127b, 0b,",
        "\tfloat float_4(lat-2.d, lat-2.d) ;",
    ] {
        assert!(cdl.contains(needle), "missing {needle:?} in\n{cdl}");
    }
    let vi = vars.iter().position(|v| v.var.name == "int_1").unwrap();
    let AttrValue::I32(expected_ints) = &vars[vi].data else {
        unreachable!()
    };
    let printed: Vec<i32> = ncdump_values(&path, "int_1")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(&printed, expected_ints);
    let vi = vars.iter().position(|v| v.var.name == "short_3").unwrap();
    let AttrValue::I16(expected_shorts) = &vars[vi].data else {
        unreachable!()
    };
    let printed: Vec<i16> = ncdump_values(&path, "short_3")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(&printed, expected_shorts);
    (dir, path, layout)
}

#[test]
fn cdf2_default_all_classic_types() {
    if !tools_available() {
        return;
    }
    let (_dir, _path, layout) = roundtrip(&CDF2_TYPES, None, Version::Cdf2);
    // Byte/char/short variables of odd length are padded; begins stay 4-aligned.
    assert!((0..layout.num_vars()).any(|v| layout.padding(v) > 0));
    assert!((0..layout.num_vars()).all(|v| layout.begin(v) % 4 == 0));
}

#[test]
fn cdf1_when_requested() {
    if !tools_available() {
        return;
    }
    roundtrip(&CDF2_TYPES, Some(Version::Cdf1), Version::Cdf1);
}

#[test]
fn cdf5_chosen_for_unsigned_and_64_bit_types() {
    if !tools_available() {
        return;
    }
    let (_dir, path, _) = roundtrip(&ALL_TYPES, None, Version::Cdf5);
    let cdl = ncdump(&["-h"], &path);
    for needle in [
        "\tuint64 uint64_0(x, y) ;",
        "\t\t:one_uint64 = 0ULL ;",
        "\t\t:many_ubyte = 0UB, 255UB, 0UB,",
        "\t\t:one_int64 = -9223372036854775808LL ;",
    ] {
        assert!(cdl.contains(needle), "missing {needle:?} in\n{cdl}");
    }
    let printed = ncdump_values(&path, "uint64_1");
    assert_eq!(printed[0], "0");
    assert_eq!(printed[1], "18446744073709551615");
}

#[test]
fn cdf5_when_requested_for_classic_types() {
    if !tools_available() {
        return;
    }
    roundtrip(&CDF2_TYPES, Some(Version::Cdf5), Version::Cdf5);
}

#[test]
fn empty_and_attribute_only_files() {
    if !tools_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for version in [Version::Cdf1, Version::Cdf2, Version::Cdf5] {
        let gatts = vec![("empty".to_owned(), AttrValue::Text(String::new()))];
        let dims = vec![Dim::new("unused", 4)];
        for (dims, gatts) in [(&vec![], &vec![]), (&dims, &gatts)] {
            let (_, bytes) = build(dims, &[], gatts, Some(version));
            let path = dir.path().join("empty.nc");
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(ncdump(&["-k"], &path).trim(), version.ncdump_kind());
            python_check(&path, dims, &[], gatts, version);
        }
    }
}

#[test]
fn range_and_stream_writers_produce_the_same_file() {
    if !tools_available() {
        return;
    }
    let (dims, vars, gatts) = dataset(&ALL_TYPES);
    let (layout, full) = build(&dims, &vars, &gatts, None);
    let encoded: Vec<Vec<u8>> = vars
        .iter()
        .map(|v| {
            let mut out = Vec::new();
            v.data.encode(&mut out);
            out
        })
        .collect();
    // Reassemble from odd-sized ranges, producing only the requested elements.
    let mut out = Vec::new();
    let mut start = 0;
    while start < layout.total_len() {
        let end = (start + 37).min(layout.total_len());
        let n = layout
            .write_range(&mut out, start..end, |var, els| {
                let size = layout.element_size(var);
                encoded[var][els.start as usize * size..els.end as usize * size].to_vec()
            })
            .unwrap();
        assert_eq!(n, end - start);
        start = end;
    }
    assert_eq!(out, full);
    // And the python reader agrees with this reassembled file too.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ranges.nc");
    std::fs::write(&path, &out).unwrap();
    python_check(&path, &dims, &vars, &gatts, Version::Cdf5);
}

/// Writes a sparse file: header, then only the given (var, element, bytes)
/// values at their computed offsets; everything else reads as zeros.
fn write_sparse(path: &Path, layout: &Layout, values: &[(usize, u64, Vec<u8>)]) {
    let mut f = File::create(path).unwrap();
    f.write_all(layout.header()).unwrap();
    for (var, element, bytes) in values {
        f.seek(SeekFrom::Start(layout.element_offset(*var, *element)))
            .unwrap();
        f.write_all(bytes).unwrap();
    }
    f.set_len(layout.total_len()).unwrap();
}

fn be<T: tessera::encode::classic::BeValue>(v: T) -> Vec<u8> {
    let mut out = Vec::new();
    encode_be(&[v], &mut out);
    out
}

/// A > 4 GiB last variable in CDF-2 (vsize sentinel 2^32-1), read back deep
/// inside the file. The file is sparse, so this costs no disk space.
#[test]
fn cdf2_large_last_variable_sparse() {
    if !tools_available() {
        return;
    }
    let n: u64 = 5_000_000_001; // odd => padding after the big byte variable
    let dims = [Dim::new("small", 3), Dim::new("big", n)];
    // `big` exceeds i32::MAX as a dimension length, so it must be split:
    // use a 2-D shape instead to stay within CDF-2's 32-bit dimension lengths.
    let dims2 = [
        Dim::new("small", 3),
        Dim::new("rows", 3),
        Dim::new("cols", 1_666_666_667),
    ];
    let vars = [
        Var::new("a", NcType::Int, vec![0]),
        Var::new("big", NcType::Byte, vec![1, 2]),
    ];
    assert!(matches!(
        Layout::new(
            &dims,
            &[Var::new("big", NcType::Byte, vec![1])],
            &[],
            Some(Version::Cdf2)
        ),
        Err(tessera::encode::classic::ClassicError::RequiresCdf5 { .. })
    ));
    let layout = Layout::new(&dims2, &vars, &[], Some(Version::Cdf2)).unwrap();
    let total_elems = 3 * 1_666_666_667u64;
    assert_eq!(layout.data_len(1), total_elems);
    assert_eq!(
        layout.total_len(),
        layout.begin(1) + total_elems.div_ceil(4) * 4
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big2.nc");
    let values = vec![
        (0, 0, be(11i32)),
        (0, 2, be(-13i32)),
        (1, 0, be(1i8)),
        (1, 4_294_967_296, be(-2i8)), // beyond 4 GiB into the variable
        (1, total_elems - 1, be(-3i8)),
    ];
    write_sparse(&path, &layout, &values);
    assert_eq!(ncdump(&["-k"], &path).trim(), "64-bit offset");
    let out = run(
        "python3",
        &[
            "-c",
            "import sys, netCDF4\n\
             ds = netCDF4.Dataset(sys.argv[1]); ds.set_auto_maskandscale(False)\n\
             a = ds['a'][:]; b = ds['big']\n\
             print(list(a), b.shape, int(b[0, 0]), int(b[2, 4294967296 - 2*1666666667]), int(b[2, -1]), int(b[1, 5]))",
            path.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.trim(),
        "[np.int32(11), np.int32(0), np.int32(-13)] (3, 1666666667) 1 -2 -3 0"
    );
}

/// Two > 4 GiB variables force CDF-5; values deep inside both are read back.
#[test]
fn cdf5_chosen_for_several_large_variables_sparse() {
    if !tools_available() {
        return;
    }
    let n: u64 = 4_500_000_001;
    let dims = [Dim::new("n", n), Dim::new("three", 3)];
    let vars = [
        Var::new("a", NcType::Byte, vec![0]),
        Var::new("b", NcType::Short, vec![0]).with_attr("note", "after a > 4 GiB variable"),
        Var::new("c", NcType::Double, vec![1]),
    ];
    assert!(matches!(
        Layout::new(&dims, &vars, &[], Some(Version::Cdf2)),
        Err(tessera::encode::classic::ClassicError::RequiresCdf5 { .. })
    ));
    let layout = Layout::new(&dims, &vars, &[], None).unwrap();
    assert_eq!(layout.version(), Version::Cdf5);
    assert_eq!(layout.begin(1), layout.begin(0) + n.div_ceil(4) * 4);
    assert_eq!(layout.begin(2), layout.begin(1) + (2 * n).div_ceil(4) * 4);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big5.nc");
    let values = vec![
        (0, n - 1, be(-7i8)),
        (1, 0, be(300i16)),
        (1, n - 1, be(-301i16)),
        (2, 1, be(2.5f64)),
    ];
    write_sparse(&path, &layout, &values);
    assert_eq!(ncdump(&["-k"], &path).trim(), "cdf5");
    let out = run(
        "python3",
        &[
            "-c",
            "import sys, netCDF4\n\
             ds = netCDF4.Dataset(sys.argv[1]); ds.set_auto_maskandscale(False)\n\
             print(int(ds['a'][-1]), int(ds['a'][-2]), int(ds['b'][0]), int(ds['b'][-1]), list(map(float, ds['c'][:])), ds['b'].getncattr('note'))",
            path.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.trim(),
        "-7 0 300 -301 [0.0, 2.5, 0.0] after a > 4 GiB variable"
    );
}
