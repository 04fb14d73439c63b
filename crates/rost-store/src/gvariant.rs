//! GVariant serialization in normal form, as OSTree hashes it.
//!
//! Hand-written rather than taken from `zvariant`/`gvariant`: OSTree object ids are
//! sha256 over the serialized bytes, so this module must produce GLib's *normal form*
//! exactly (offset widths derived from container size, zero padding, framing offsets
//! in reverse for tuples) and must reject non-normal input the way fsck/pull do.
//! The type set OSTree uses is small, and a generic [`Value`] driven by the type keeps
//! the whole encoder/decoder in one auditable file, with no `unsafe` and no derive
//! magic whose output could drift between crate versions.
//!
//! Integers are encoded little-endian (host order on every platform OSTree ships
//! on). OSTree's own big-endian fields are byte-swapped by the callers in
//! [`crate::objects`].

use std::fmt::{self, Write as _};

/// Errors from parsing a type string or decoding bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GvError {
    /// A type string that is not a valid GVariant type.
    #[error("invalid GVariant type string {0:?}")]
    BadType(String),
    /// The bytes are not a normal-form serialization of the expected type.
    #[error("invalid {ty} at offset {offset}: {reason}")]
    Invalid {
        /// Type being decoded.
        ty: String,
        /// Offset of the value within the outer buffer.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

/// A GVariant type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    /// `b`
    Bool,
    /// `y`
    Byte,
    /// `n`
    I16,
    /// `q`
    U16,
    /// `i`
    I32,
    /// `u`
    U32,
    /// `x`
    I64,
    /// `t`
    U64,
    /// `h`
    Handle,
    /// `d`
    Double,
    /// `s`
    Str,
    /// `o`
    ObjectPath,
    /// `g`
    Signature,
    /// `v`
    Variant,
    /// `mT`
    Maybe(Box<Type>),
    /// `aT`
    Array(Box<Type>),
    /// `(…)`
    Tuple(Vec<Type>),
    /// `{kv}`
    DictEntry(Box<Type>, Box<Type>),
}

impl Type {
    /// Parses a complete type string such as `(a{sv}aya(say)sstayay)`.
    pub fn parse(s: &str) -> Result<Type, GvError> {
        let bytes = s.as_bytes();
        let (ty, used) =
            Self::parse_prefix(bytes, 0).ok_or_else(|| GvError::BadType(s.to_owned()))?;
        if used != bytes.len() {
            return Err(GvError::BadType(s.to_owned()));
        }
        Ok(ty)
    }

    fn parse_prefix(b: &[u8], depth: usize) -> Option<(Type, usize)> {
        if depth > MAX_DEPTH {
            return None;
        }
        let c = *b.first()?;
        let simple = match c {
            b'b' => Some(Type::Bool),
            b'y' => Some(Type::Byte),
            b'n' => Some(Type::I16),
            b'q' => Some(Type::U16),
            b'i' => Some(Type::I32),
            b'u' => Some(Type::U32),
            b'x' => Some(Type::I64),
            b't' => Some(Type::U64),
            b'h' => Some(Type::Handle),
            b'd' => Some(Type::Double),
            b's' => Some(Type::Str),
            b'o' => Some(Type::ObjectPath),
            b'g' => Some(Type::Signature),
            b'v' => Some(Type::Variant),
            _ => None,
        };
        if let Some(t) = simple {
            return Some((t, 1));
        }
        match c {
            b'a' => {
                let (inner, n) = Self::parse_prefix(&b[1..], depth + 1)?;
                Some((Type::Array(Box::new(inner)), n + 1))
            }
            b'm' => {
                let (inner, n) = Self::parse_prefix(&b[1..], depth + 1)?;
                Some((Type::Maybe(Box::new(inner)), n + 1))
            }
            b'(' => {
                let mut pos = 1;
                let mut members = Vec::new();
                loop {
                    if *b.get(pos)? == b')' {
                        return Some((Type::Tuple(members), pos + 1));
                    }
                    let (t, n) = Self::parse_prefix(&b[pos..], depth + 1)?;
                    members.push(t);
                    pos += n;
                }
            }
            b'{' => {
                let (k, n1) = Self::parse_prefix(&b[1..], depth + 1)?;
                if !k.is_basic() {
                    return None;
                }
                let (v, n2) = Self::parse_prefix(&b[1 + n1..], depth + 1)?;
                if *b.get(1 + n1 + n2)? != b'}' {
                    return None;
                }
                Some((Type::DictEntry(Box::new(k), Box::new(v)), n1 + n2 + 2))
            }
            _ => None,
        }
    }

    fn is_basic(&self) -> bool {
        !matches!(
            self,
            Type::Variant | Type::Maybe(_) | Type::Array(_) | Type::Tuple(_) | Type::DictEntry(..)
        )
    }

    /// Alignment in bytes (1, 2, 4 or 8).
    pub fn alignment(&self) -> usize {
        match self {
            Type::Bool | Type::Byte | Type::Str | Type::ObjectPath | Type::Signature => 1,
            Type::I16 | Type::U16 => 2,
            Type::I32 | Type::U32 | Type::Handle => 4,
            Type::I64 | Type::U64 | Type::Double | Type::Variant => 8,
            Type::Maybe(t) | Type::Array(t) => t.alignment(),
            Type::Tuple(ms) => ms.iter().map(Type::alignment).max().unwrap_or(1),
            Type::DictEntry(k, v) => k.alignment().max(v.alignment()),
        }
    }

    /// Size in bytes when the type is fixed-size, else `None`.
    pub fn fixed_size(&self) -> Option<usize> {
        match self {
            Type::Bool | Type::Byte => Some(1),
            Type::I16 | Type::U16 => Some(2),
            Type::I32 | Type::U32 | Type::Handle => Some(4),
            Type::I64 | Type::U64 | Type::Double => Some(8),
            Type::Str
            | Type::ObjectPath
            | Type::Signature
            | Type::Variant
            | Type::Maybe(_)
            | Type::Array(_) => None,
            Type::Tuple(ms) => fixed_tuple_size(ms.iter()),
            Type::DictEntry(k, v) => fixed_tuple_size([k.as_ref(), v.as_ref()].into_iter()),
        }
    }
}

fn fixed_tuple_size<'a>(members: impl Iterator<Item = &'a Type> + Clone) -> Option<usize> {
    let mut off = 0usize;
    let mut align = 1usize;
    let mut any = false;
    for m in members {
        any = true;
        let a = m.alignment();
        align = align.max(a);
        off = pad_to(off, a);
        off += m.fixed_size()?;
    }
    if !any {
        return Some(1);
    }
    Some(pad_to(off, align))
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = match self {
            Type::Bool => 'b',
            Type::Byte => 'y',
            Type::I16 => 'n',
            Type::U16 => 'q',
            Type::I32 => 'i',
            Type::U32 => 'u',
            Type::I64 => 'x',
            Type::U64 => 't',
            Type::Handle => 'h',
            Type::Double => 'd',
            Type::Str => 's',
            Type::ObjectPath => 'o',
            Type::Signature => 'g',
            Type::Variant => 'v',
            Type::Maybe(t) => return write!(f, "m{t}"),
            Type::Array(t) => return write!(f, "a{t}"),
            Type::Tuple(ms) => {
                f.write_char('(')?;
                for m in ms {
                    write!(f, "{m}")?;
                }
                return f.write_char(')');
            }
            Type::DictEntry(k, v) => return write!(f, "{{{k}{v}}}"),
        };
        f.write_char(c)
    }
}

/// A GVariant value. `ay` has its own compact variant, [`Value::Bytes`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `b`
    Bool(bool),
    /// `y`
    Byte(u8),
    /// `n`
    I16(i16),
    /// `q`
    U16(u16),
    /// `i`
    I32(i32),
    /// `u`
    U32(u32),
    /// `x`
    I64(i64),
    /// `t`
    U64(u64),
    /// `h`
    Handle(i32),
    /// `d`
    Double(f64),
    /// `s`
    Str(String),
    /// `o`
    ObjectPath(String),
    /// `g`
    Signature(String),
    /// `v`
    Variant(Box<Value>),
    /// `mT`: element type and optional value.
    Maybe(Type, Option<Box<Value>>),
    /// `ay`
    Bytes(Vec<u8>),
    /// `aT` (T ≠ `y`): element type and elements.
    Array(Type, Vec<Value>),
    /// `(…)`
    Tuple(Vec<Value>),
    /// `{kv}`
    DictEntry(Box<Value>, Box<Value>),
}

/// Deepest nesting of containers accepted (GLib allows 128; OSTree needs 4).
const MAX_DEPTH: usize = 64;

fn pad_to(off: usize, align: usize) -> usize {
    (off + align - 1) & !(align - 1)
}

fn offset_width(body: usize, count: usize) -> usize {
    if count == 0 {
        return 0;
    }
    for w in [1usize, 2, 4] {
        let total = body + count * w;
        let max = 1usize << (8 * w);
        if total < max {
            return w;
        }
    }
    8
}

fn width_for_size(size: usize) -> usize {
    if size <= 0xff {
        1
    } else if size <= 0xffff {
        2
    } else if size <= 0xffff_ffff {
        4
    } else {
        8
    }
}

fn push_offset(out: &mut Vec<u8>, v: usize, w: usize) {
    let bytes = (v as u64).to_le_bytes();
    out.extend_from_slice(&bytes[..w]);
}

fn read_offset(b: &[u8], w: usize) -> usize {
    let mut buf = [0u8; 8];
    buf[..w].copy_from_slice(&b[..w]);
    u64::from_le_bytes(buf) as usize
}

impl Value {
    /// Convenience constructor for `s`.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// Builds an `a{sv}` dictionary from key/value pairs, preserving order.
    pub fn dict_sv(entries: impl IntoIterator<Item = (String, Value)>) -> Value {
        let items = entries
            .into_iter()
            .map(|(k, v)| {
                Value::DictEntry(
                    Box::new(Value::Str(k)),
                    Box::new(Value::Variant(Box::new(v))),
                )
            })
            .collect();
        Value::Array(
            Type::DictEntry(Box::new(Type::Str), Box::new(Type::Variant)),
            items,
        )
    }

    /// The type of this value.
    pub fn type_of(&self) -> Type {
        match self {
            Value::Bool(_) => Type::Bool,
            Value::Byte(_) => Type::Byte,
            Value::I16(_) => Type::I16,
            Value::U16(_) => Type::U16,
            Value::I32(_) => Type::I32,
            Value::U32(_) => Type::U32,
            Value::I64(_) => Type::I64,
            Value::U64(_) => Type::U64,
            Value::Handle(_) => Type::Handle,
            Value::Double(_) => Type::Double,
            Value::Str(_) => Type::Str,
            Value::ObjectPath(_) => Type::ObjectPath,
            Value::Signature(_) => Type::Signature,
            Value::Variant(_) => Type::Variant,
            Value::Maybe(t, _) => Type::Maybe(Box::new(t.clone())),
            Value::Bytes(_) => Type::Array(Box::new(Type::Byte)),
            Value::Array(t, _) => Type::Array(Box::new(t.clone())),
            Value::Tuple(ms) => Type::Tuple(ms.iter().map(Value::type_of).collect()),
            Value::DictEntry(k, v) => Type::DictEntry(Box::new(k.type_of()), Box::new(v.type_of())),
        }
    }

    /// Serializes in normal form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    /// Appends the normal-form bytes of `self` to `out`, which must be positioned at
    /// an offset aligned for this value relative to its container start.
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Value::Bool(b) => out.push(u8::from(*b)),
            Value::Byte(b) => out.push(*b),
            Value::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::I32(v) | Value::Handle(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::Double(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::Str(s) | Value::ObjectPath(s) | Value::Signature(s) => {
                out.extend_from_slice(s.as_bytes());
                out.push(0);
            }
            Value::Variant(child) => {
                let mut buf = Vec::new();
                child.write(&mut buf);
                out.extend_from_slice(&buf);
                out.push(0);
                out.extend_from_slice(child.type_of().to_string().as_bytes());
            }
            Value::Maybe(t, v) => {
                if let Some(v) = v {
                    let start = out.len();
                    let mut buf = Vec::new();
                    v.write(&mut buf);
                    out.extend_from_slice(&buf);
                    if t.fixed_size().is_none() {
                        out.push(0);
                    }
                    debug_assert!(out.len() > start);
                }
            }
            Value::Bytes(b) => out.extend_from_slice(b),
            Value::Array(t, items) => write_array(t, items, out),
            Value::Tuple(ms) => write_tuple(ms.iter(), out),
            Value::DictEntry(k, v) => write_tuple([k.as_ref(), v.as_ref()].into_iter(), out),
        }
    }

    /// Decodes normal-form `bytes` as type `ty`.
    pub fn from_bytes(ty: &Type, bytes: &[u8]) -> Result<Value, GvError> {
        decode(ty, bytes, 0, 0)
    }

    /// The string inside `s`/`o`/`g`, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::ObjectPath(s) | Value::Signature(s) => Some(s),
            _ => None,
        }
    }

    /// Looks `key` up in an `a{sv}` dictionary, returning the variant's inner value.
    pub fn lookup(&self, key: &str) -> Option<&Value> {
        let Value::Array(_, items) = self else {
            return None;
        };
        items.iter().find_map(|e| match e {
            Value::DictEntry(k, v) if k.as_str() == Some(key) => match v.as_ref() {
                Value::Variant(inner) => Some(inner.as_ref()),
                other => Some(other),
            },
            _ => None,
        })
    }

    /// Swaps the byte order of every integer inside (as `g_variant_byteswap`).
    pub fn byteswapped(&self) -> Value {
        match self {
            Value::I16(v) => Value::I16(v.swap_bytes()),
            Value::U16(v) => Value::U16(v.swap_bytes()),
            Value::I32(v) => Value::I32(v.swap_bytes()),
            Value::Handle(v) => Value::Handle(v.swap_bytes()),
            Value::U32(v) => Value::U32(v.swap_bytes()),
            Value::I64(v) => Value::I64(v.swap_bytes()),
            Value::U64(v) => Value::U64(v.swap_bytes()),
            Value::Double(v) => Value::Double(f64::from_bits(v.to_bits().swap_bytes())),
            Value::Variant(c) => Value::Variant(Box::new(c.byteswapped())),
            Value::Maybe(t, v) => {
                Value::Maybe(t.clone(), v.as_ref().map(|v| Box::new(v.byteswapped())))
            }
            Value::Array(t, items) => {
                Value::Array(t.clone(), items.iter().map(Value::byteswapped).collect())
            }
            Value::Tuple(ms) => Value::Tuple(ms.iter().map(Value::byteswapped).collect()),
            Value::DictEntry(k, v) => {
                Value::DictEntry(Box::new(k.byteswapped()), Box::new(v.byteswapped()))
            }
            other => other.clone(),
        }
    }

    /// Renders in GVariant text format, as `g_variant_print(v, FALSE)` does.
    pub fn print(&self) -> String {
        let mut s = String::new();
        self.print_into(&mut s, false);
        s
    }

    /// Renders with type annotations, as `g_variant_print(v, TRUE)` does.
    pub fn print_annotated(&self) -> String {
        let mut s = String::new();
        self.print_into(&mut s, true);
        s
    }

    fn print_into(&self, s: &mut String, annotate: bool) {
        match self {
            Value::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
            Value::Byte(b) => {
                let _ = write!(s, "{}0x{b:02x}", if annotate { "byte " } else { "" });
            }
            Value::I16(v) => {
                let _ = write!(s, "{}{v}", if annotate { "int16 " } else { "" });
            }
            Value::U16(v) => {
                let _ = write!(s, "{}{v}", if annotate { "uint16 " } else { "" });
            }
            Value::I32(v) => {
                let _ = write!(s, "{v}");
            }
            Value::Handle(v) => {
                let _ = write!(s, "{}{v}", if annotate { "handle " } else { "" });
            }
            Value::U32(v) => {
                let _ = write!(s, "{}{v}", if annotate { "uint32 " } else { "" });
            }
            Value::I64(v) => {
                let _ = write!(s, "{}{v}", if annotate { "int64 " } else { "" });
            }
            Value::U64(v) => {
                let _ = write!(s, "{}{v}", if annotate { "uint64 " } else { "" });
            }
            Value::Double(v) => {
                if v.fract() == 0.0 && v.is_finite() {
                    let _ = write!(s, "{v:.1}");
                } else {
                    let _ = write!(s, "{v}");
                }
            }
            Value::Str(v) => print_string(s, v),
            Value::ObjectPath(v) => {
                if annotate {
                    s.push_str("objectpath ");
                }
                print_string(s, v);
            }
            Value::Signature(v) => {
                if annotate {
                    s.push_str("signature ");
                }
                print_string(s, v);
            }
            Value::Variant(c) => {
                s.push('<');
                c.print_into(s, true);
                s.push('>');
            }
            Value::Maybe(t, v) => match v {
                None => {
                    if annotate {
                        let _ = write!(s, "@m{t} ");
                    }
                    s.push_str("nothing");
                }
                Some(v) => {
                    s.push_str("just ");
                    v.print_into(s, annotate);
                }
            },
            Value::Bytes(b) => {
                if b.is_empty() {
                    if annotate {
                        s.push_str("@ay ");
                    }
                    s.push_str("[]");
                    return;
                }
                // GLib prints NUL-terminated printable byte strings as b'…'.
                if b.last() == Some(&0) && b[..b.len() - 1].iter().all(|c| (0x20..0x7f).contains(c))
                {
                    s.push_str("b'");
                    for &c in &b[..b.len() - 1] {
                        if c == b'\'' || c == b'\\' {
                            s.push('\\');
                        }
                        s.push(c as char);
                    }
                    s.push('\'');
                    return;
                }
                s.push('[');
                for (i, c) in b.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    let _ = write!(
                        s,
                        "{}0x{c:02x}",
                        if i == 0 && annotate { "byte " } else { "" }
                    );
                }
                s.push(']');
            }
            Value::Array(t, items) => {
                if items.is_empty() {
                    if annotate {
                        let _ = write!(s, "@a{t} ");
                    }
                    s.push_str("[]");
                    return;
                }
                let is_dict = matches!(t, Type::DictEntry(..));
                s.push(if is_dict { '{' } else { '[' });
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    if let (true, Value::DictEntry(k, v)) = (is_dict, it) {
                        k.print_into(s, annotate && i == 0);
                        s.push_str(": ");
                        v.print_into(s, annotate && i == 0);
                    } else {
                        it.print_into(s, annotate && i == 0);
                    }
                }
                s.push(if is_dict { '}' } else { ']' });
            }
            Value::Tuple(ms) => {
                s.push('(');
                for (i, m) in ms.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    m.print_into(s, annotate);
                }
                if ms.len() == 1 {
                    s.push(',');
                }
                s.push(')');
            }
            Value::DictEntry(k, v) => {
                s.push('{');
                k.print_into(s, annotate);
                s.push_str(", ");
                v.print_into(s, annotate);
                s.push('}');
            }
        }
    }
}

fn print_string(s: &mut String, v: &str) {
    let quote = if v.contains('\'') && !v.contains('"') {
        '"'
    } else {
        '\''
    };
    s.push(quote);
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            c if c == quote => {
                s.push('\\');
                s.push(c);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push(quote);
}

fn write_array(elem: &Type, items: &[Value], out: &mut Vec<u8>) {
    let mut buf = Vec::new();
    if elem.fixed_size().is_some() {
        for it in items {
            it.write(&mut buf);
        }
        out.extend_from_slice(&buf);
        return;
    }
    let align = elem.alignment();
    let mut ends = Vec::with_capacity(items.len());
    for it in items {
        let p = pad_to(buf.len(), align);
        buf.resize(p, 0);
        it.write(&mut buf);
        ends.push(buf.len());
    }
    let w = offset_width(buf.len(), ends.len());
    for e in ends {
        push_offset(&mut buf, e, w);
    }
    out.extend_from_slice(&buf);
}

fn write_tuple<'a>(members: impl Iterator<Item = &'a Value> + Clone, out: &mut Vec<u8>) {
    let types: Vec<Type> = members.clone().map(Value::type_of).collect();
    let mut buf = Vec::new();
    let n = types.len();
    let mut ends = Vec::new();
    for (i, (m, t)) in members.zip(types.iter()).enumerate() {
        let p = pad_to(buf.len(), t.alignment());
        buf.resize(p, 0);
        m.write(&mut buf);
        if t.fixed_size().is_none() && i + 1 != n {
            ends.push(buf.len());
        }
    }
    if let Some(size) = fixed_tuple_size(types.iter()) {
        buf.resize(size, 0);
        out.extend_from_slice(&buf);
        return;
    }
    let w = offset_width(buf.len(), ends.len());
    for e in ends.iter().rev() {
        push_offset(&mut buf, *e, w);
    }
    out.extend_from_slice(&buf);
}

fn invalid(ty: &Type, offset: usize, reason: &'static str) -> GvError {
    GvError::Invalid {
        ty: ty.to_string(),
        offset,
        reason,
    }
}

fn fixed<const N: usize>(ty: &Type, b: &[u8], at: usize) -> Result<[u8; N], GvError> {
    b.try_into()
        .map_err(|_| invalid(ty, at, "wrong size for fixed-size type"))
}

fn decode(ty: &Type, b: &[u8], at: usize, depth: usize) -> Result<Value, GvError> {
    if depth > MAX_DEPTH {
        return Err(invalid(ty, at, "nested too deeply"));
    }
    Ok(match ty {
        Type::Bool => match fixed::<1>(ty, b, at)? {
            [0] => Value::Bool(false),
            [1] => Value::Bool(true),
            _ => return Err(invalid(ty, at, "boolean is neither 0 nor 1")),
        },
        Type::Byte => Value::Byte(fixed::<1>(ty, b, at)?[0]),
        Type::I16 => Value::I16(i16::from_le_bytes(fixed(ty, b, at)?)),
        Type::U16 => Value::U16(u16::from_le_bytes(fixed(ty, b, at)?)),
        Type::I32 => Value::I32(i32::from_le_bytes(fixed(ty, b, at)?)),
        Type::Handle => Value::Handle(i32::from_le_bytes(fixed(ty, b, at)?)),
        Type::U32 => Value::U32(u32::from_le_bytes(fixed(ty, b, at)?)),
        Type::I64 => Value::I64(i64::from_le_bytes(fixed(ty, b, at)?)),
        Type::U64 => Value::U64(u64::from_le_bytes(fixed(ty, b, at)?)),
        Type::Double => Value::Double(f64::from_le_bytes(fixed(ty, b, at)?)),
        Type::Str | Type::ObjectPath | Type::Signature => {
            let s = decode_str(ty, b, at)?;
            match ty {
                Type::Str => Value::Str(s),
                Type::ObjectPath => Value::ObjectPath(s),
                _ => Value::Signature(s),
            }
        }
        Type::Variant => {
            let nul = b
                .iter()
                .rposition(|&c| c == 0)
                .ok_or_else(|| invalid(ty, at, "variant has no type"))?;
            let tstr = std::str::from_utf8(&b[nul + 1..])
                .map_err(|_| invalid(ty, at, "variant type not UTF-8"))?;
            let inner_ty =
                Type::parse(tstr).map_err(|_| invalid(ty, at, "variant has a bad type string"))?;
            let body = &b[..nul];
            Value::Variant(Box::new(decode(&inner_ty, body, at, depth + 1)?))
        }
        Type::Maybe(t) => {
            if b.is_empty() {
                Value::Maybe((**t).clone(), None)
            } else if t.fixed_size().is_some() {
                Value::Maybe((**t).clone(), Some(Box::new(decode(t, b, at, depth + 1)?)))
            } else {
                let (last, body) = b
                    .split_last()
                    .ok_or_else(|| invalid(ty, at, "empty maybe"))?;
                if *last != 0 {
                    return Err(invalid(ty, at, "maybe lacks trailing zero"));
                }
                Value::Maybe(
                    (**t).clone(),
                    Some(Box::new(decode(t, body, at, depth + 1)?)),
                )
            }
        }
        Type::Array(elem) if **elem == Type::Byte => Value::Bytes(b.to_vec()),
        Type::Array(elem) => Value::Array(
            (**elem).clone(),
            decode_array_items(ty, elem, b, at, depth)?,
        ),
        Type::Tuple(ms) => Value::Tuple(decode_tuple(ty, ms.iter(), b, at, depth)?),
        Type::DictEntry(k, v) => {
            let mut items = decode_tuple(ty, [k.as_ref(), v.as_ref()].into_iter(), b, at, depth)?;
            let v = items.pop().ok_or_else(|| invalid(ty, at, "dict entry"))?;
            let k = items.pop().ok_or_else(|| invalid(ty, at, "dict entry"))?;
            Value::DictEntry(Box::new(k), Box::new(v))
        }
    })
}

fn decode_str(ty: &Type, b: &[u8], at: usize) -> Result<String, GvError> {
    let (last, body) = b
        .split_last()
        .ok_or_else(|| invalid(ty, at, "string lacks its NUL"))?;
    if *last != 0 {
        return Err(invalid(ty, at, "string lacks its NUL"));
    }
    if body.contains(&0) {
        return Err(invalid(ty, at, "string contains NUL"));
    }
    String::from_utf8(body.to_vec()).map_err(|_| invalid(ty, at, "string is not UTF-8"))
}

/// Splits a variable-element array into element slices (with their offsets).
pub(crate) fn array_elements<'b>(
    ty: &Type,
    elem: &Type,
    b: &'b [u8],
    at: usize,
) -> Result<Vec<(&'b [u8], usize)>, GvError> {
    if let Some(size) = elem.fixed_size() {
        if !b.len().is_multiple_of(size) {
            return Err(invalid(
                ty,
                at,
                "array length not a multiple of its element size",
            ));
        }
        return Ok(b
            .chunks(size)
            .enumerate()
            .map(|(i, c)| (c, at + i * size))
            .collect());
    }
    if b.is_empty() {
        return Ok(Vec::new());
    }
    let w = width_for_size(b.len());
    if b.len() < w {
        return Err(invalid(ty, at, "array too short"));
    }
    let last_end = read_offset(&b[b.len() - w..], w);
    if last_end > b.len() - w || !(b.len() - last_end).is_multiple_of(w) {
        return Err(invalid(ty, at, "bad array framing offset"));
    }
    let n = (b.len() - last_end) / w;
    if n == 0 {
        return Err(invalid(ty, at, "bad array framing offset"));
    }
    let offs = &b[last_end..];
    let align = elem.alignment();
    let mut start = 0usize;
    let mut items = Vec::with_capacity(n);
    for i in 0..n {
        let end = read_offset(&offs[i * w..], w);
        let s = pad_to(start, align);
        if s > end || end > last_end {
            return Err(invalid(ty, at, "bad array framing offset"));
        }
        if b[start..s].iter().any(|&c| c != 0) {
            return Err(invalid(ty, at, "non-zero padding"));
        }
        items.push((&b[s..end], at + s));
        start = end;
    }
    Ok(items)
}

fn decode_array_items(
    ty: &Type,
    elem: &Type,
    b: &[u8],
    at: usize,
    depth: usize,
) -> Result<Vec<Value>, GvError> {
    array_elements(ty, elem, b, at)?
        .into_iter()
        .map(|(slice, off)| decode(elem, slice, off, depth + 1))
        .collect()
}

/// Splits a tuple into member slices.
pub(crate) fn tuple_members<'a, 'b>(
    ty: &Type,
    members: impl Iterator<Item = &'a Type> + Clone,
    b: &'b [u8],
    at: usize,
) -> Result<Vec<&'b [u8]>, GvError> {
    let types: Vec<&Type> = members.collect();
    if let Some(size) = fixed_tuple_size(types.iter().copied())
        && b.len() != size
    {
        return Err(invalid(ty, at, "wrong size for fixed-size tuple"));
    }
    let n = types.len();
    let n_var_nonlast = types
        .iter()
        .enumerate()
        .filter(|(i, t)| t.fixed_size().is_none() && i + 1 != n)
        .count();
    let w = if n_var_nonlast == 0 {
        0
    } else {
        width_for_size(b.len())
    };
    let frame_len = w * n_var_nonlast;
    if frame_len > b.len() {
        return Err(invalid(ty, at, "tuple too short for its framing offsets"));
    }
    let body_end = b.len() - frame_len;
    let mut frame_idx = 0usize;
    let mut pos = 0usize;
    let mut out = Vec::with_capacity(n);
    for (i, t) in types.iter().enumerate() {
        let s = pad_to(pos, t.alignment());
        if s > body_end {
            return Err(invalid(ty, at, "tuple member out of bounds"));
        }
        if b[pos..s].iter().any(|&c| c != 0) {
            return Err(invalid(ty, at, "non-zero padding"));
        }
        let end = if let Some(size) = t.fixed_size() {
            s + size
        } else if i + 1 == n {
            body_end
        } else {
            frame_idx += 1;
            let off_pos = b.len() - frame_idx * w;
            read_offset(&b[off_pos..], w)
        };
        if end < s || end > body_end {
            return Err(invalid(ty, at, "tuple member out of bounds"));
        }
        out.push(&b[s..end]);
        pos = end;
    }
    if fixed_tuple_size(types.iter().copied()).is_none() && pos != body_end {
        return Err(invalid(ty, at, "trailing bytes in tuple"));
    }
    Ok(out)
}

fn decode_tuple<'a>(
    ty: &Type,
    members: impl Iterator<Item = &'a Type> + Clone,
    b: &[u8],
    at: usize,
    depth: usize,
) -> Result<Vec<Value>, GvError> {
    let types: Vec<&Type> = members.clone().collect();
    let slices = tuple_members(ty, members, b, at)?;
    types
        .iter()
        .zip(slices)
        .map(|(t, s)| {
            let off = at + (s.as_ptr() as usize - b.as_ptr() as usize);
            decode(t, s, off, depth + 1)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(ty: &str, v: &Value) -> Vec<u8> {
        let t = Type::parse(ty).unwrap();
        assert_eq!(v.type_of(), t, "type_of for {ty}");
        let bytes = v.to_bytes();
        let back = Value::from_bytes(&t, &bytes).unwrap();
        assert_eq!(&back, v, "roundtrip of {ty}");
        bytes
    }

    #[test]
    fn type_strings_parse_and_print() {
        for s in [
            "(a{sv}aya(say)sstayay)",
            "(uuua(ayay))",
            "(tuuuusa(ayay))",
            "a{sv}",
            "aay",
            "mv",
            "()",
        ] {
            assert_eq!(Type::parse(s).unwrap().to_string(), s);
        }
        for bad in ["", "(", "a", "{vs}", "z", "(s))"] {
            assert!(Type::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn empty_dirtree_is_single_zero_byte() {
        let v = Value::Tuple(vec![
            Value::Array(Type::parse("(say)").unwrap(), vec![]),
            Value::Array(Type::parse("(sayay)").unwrap(), vec![]),
        ]);
        assert_eq!(roundtrip("(a(say)a(sayay))", &v), vec![0]);
    }

    #[test]
    fn dirmeta_without_xattrs_is_12_bytes() {
        let v = Value::Tuple(vec![
            Value::U32(0),
            Value::U32(0),
            Value::U32(0o40755u32.swap_bytes()),
            Value::Array(Type::parse("(ayay)").unwrap(), vec![]),
        ]);
        let b = roundtrip("(uuua(ayay))", &v);
        assert_eq!(b, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x41, 0xed]);
    }

    #[test]
    fn file_header_matches_ostree_example() {
        // From ostree-format.md §3.4: hello\n, mode 0755.
        let v = Value::Tuple(vec![
            Value::U32(0),
            Value::U32(0),
            Value::U32(0o100755u32.swap_bytes()),
            Value::U32(0),
            Value::str(""),
            Value::Array(Type::parse("(ayay)").unwrap(), vec![]),
        ]);
        let b = roundtrip("(uuuusa(ayay))", &v);
        assert_eq!(hex::encode(b), "0000000000000000000081ed000000000011");
    }

    #[test]
    fn xattr_array_matches_ostree_example() {
        let x = |n: &[u8], v: &[u8]| {
            Value::Tuple(vec![Value::Bytes(n.to_vec()), Value::Bytes(v.to_vec())])
        };
        let v = Value::Array(
            Type::parse("(ayay)").unwrap(),
            vec![x(b"user.a\0", b"AV"), x(b"user.b\0", b"BV")],
        );
        let b = roundtrip("a(ayay)", &v);
        assert_eq!(
            hex::encode(b),
            "757365722e6100415607757365722e62004256070a14"
        );
    }

    #[test]
    fn values_roundtrip() {
        let cases: Vec<(&str, Value)> = vec![
            ("s", Value::str("hello")),
            (
                "as",
                Value::Array(Type::Str, vec![Value::str("a"), Value::str("bc")]),
            ),
            (
                "aay",
                Value::Array(
                    Type::parse("ay").unwrap(),
                    vec![Value::Bytes(vec![1, 2]), Value::Bytes(vec![])],
                ),
            ),
            ("v", Value::Variant(Box::new(Value::U64(7)))),
            (
                "a{sv}",
                Value::dict_sv([
                    ("version".into(), Value::str("1.0")),
                    ("b".into(), Value::Bool(true)),
                ]),
            ),
            ("(ty)", Value::Tuple(vec![Value::U64(1), Value::Byte(2)])),
            ("(yt)", Value::Tuple(vec![Value::Byte(2), Value::U64(1)])),
            (
                "ms",
                Value::Maybe(Type::Str, Some(Box::new(Value::str("x")))),
            ),
            ("mu", Value::Maybe(Type::U32, None)),
            ("()", Value::Tuple(vec![])),
            (
                "(sv)",
                Value::Tuple(vec![
                    Value::str("k"),
                    Value::Variant(Box::new(Value::Bytes(vec![9; 300]))),
                ]),
            ),
        ];
        for (t, v) in &cases {
            roundtrip(t, v);
        }
    }

    #[test]
    fn large_array_uses_wider_offsets() {
        let items: Vec<Value> = (0..100)
            .map(|i| Value::str(format!("item-{i:04}")))
            .collect();
        let v = Value::Array(Type::Str, items);
        let b = roundtrip("as", &v);
        assert!(b.len() > 0xff);
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        let t = Type::parse("(a{sv}aya(say)sstayay)").unwrap();
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let _ = Value::from_bytes(&t, &junk);
        }
        assert!(Value::from_bytes(&Type::Str, b"abc").is_err());
        assert!(Value::from_bytes(&Type::U32, b"abc").is_err());
    }

    #[test]
    fn deep_nesting_is_rejected_not_a_stack_overflow() {
        let mut v = Value::U32(1);
        for _ in 0..10_000 {
            v = Value::Variant(Box::new(v));
        }
        // Serializing is fine (our own writer); decoding hostile depth fails cleanly.
        let mut bytes = vec![0u8; 4];
        for _ in 0..100_000 {
            bytes.extend_from_slice(b"\0v");
        }
        bytes[3] = 1;
        assert!(Value::from_bytes(&Type::Variant, &bytes).is_err());
        assert!(Type::parse(&"a".repeat(1000).chars().chain(['y']).collect::<String>()).is_err());
        drop(v);
    }

    #[test]
    fn prints_text_format() {
        assert_eq!(Value::str("1.0").print(), "'1.0'");
        assert_eq!(
            Value::Array(Type::Str, vec![Value::str("a")]).print(),
            "['a']"
        );
        assert_eq!(
            Value::Variant(Box::new(Value::U64(5))).print(),
            "<uint64 5>"
        );
        assert_eq!(Value::Bool(true).print(), "true");
    }
}
