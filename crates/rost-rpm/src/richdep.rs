//! Rich (boolean) dependencies: `(a and b)`, `(a or b)`, `(a if b else c)`,
//! `(a unless b else c)`, `(a with b)`, `(a without b)`, nested.
//!
//! Hand-written: a 100-line recursive-descent parser over rpm's grammar
//! (`rpmrichParse` in rpm's `lib/rpmds.c`); no crate implements it.

use crate::evr::Sense;

/// A parsed rich dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rich {
    /// `name [op evr]`.
    Atom {
        /// Capability name.
        name: String,
        /// Operator.
        sense: Sense,
        /// Version.
        evr: String,
    },
    /// All must hold.
    And(Vec<Rich>),
    /// One must hold.
    Or(Vec<Rich>),
    /// `a if cond [else b]`.
    If(Box<Rich>, Box<Rich>, Option<Box<Rich>>),
    /// `a unless cond [else b]`.
    Unless(Box<Rich>, Box<Rich>, Option<Box<Rich>>),
    /// One package must provide all.
    With(Vec<Rich>),
    /// One package provides the first and not the second.
    Without(Box<Rich>, Box<Rich>),
}

fn tokenize(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' | ')' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(c.to_string());
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

const OPS: &[&str] = &["and", "or", "if", "unless", "else", "with", "without"];

struct Parser {
    toks: Vec<String>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.pos).map(String::as_str)
    }
    fn next(&mut self) -> Option<String> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn operand(&mut self) -> Result<Rich, String> {
        match self.peek() {
            Some("(") => self.group(),
            Some(t) if !OPS.contains(&t) && t != ")" => {
                let name = self.next().unwrap_or_default();
                if let Some(sense) = self.peek().and_then(Sense::parse) {
                    self.pos += 1;
                    let evr = self.next().ok_or("missing version after operator")?;
                    Ok(Rich::Atom { name, sense, evr })
                } else {
                    Ok(Rich::Atom {
                        name,
                        sense: Sense::ANY,
                        evr: String::new(),
                    })
                }
            }
            other => Err(format!("expected a dependency, got {other:?}")),
        }
    }
    fn group(&mut self) -> Result<Rich, String> {
        if self.next().as_deref() != Some("(") {
            return Err("expected '('".into());
        }
        let first = self.operand()?;
        let Some(op) = self.peek().map(str::to_owned) else {
            return Err("unterminated '('".into());
        };
        if op == ")" {
            self.pos += 1;
            return Ok(first);
        }
        if !OPS.contains(&op.as_str()) || op == "else" {
            return Err(format!("unknown operator {op:?}"));
        }
        self.pos += 1;
        let second = self.operand()?;
        let result = match op.as_str() {
            "and" | "or" | "with" => {
                let mut items = vec![first, second];
                while self.peek() == Some(op.as_str()) {
                    self.pos += 1;
                    items.push(self.operand()?);
                }
                match op.as_str() {
                    "and" => Rich::And(items),
                    "or" => Rich::Or(items),
                    _ => Rich::With(items),
                }
            }
            "without" => Rich::Without(Box::new(first), Box::new(second)),
            "if" | "unless" => {
                let els = if self.peek() == Some("else") {
                    self.pos += 1;
                    Some(Box::new(self.operand()?))
                } else {
                    None
                };
                if op == "if" {
                    Rich::If(Box::new(first), Box::new(second), els)
                } else {
                    Rich::Unless(Box::new(first), Box::new(second), els)
                }
            }
            _ => return Err(format!("unknown operator {op:?}")),
        };
        match self.next().as_deref() {
            Some(")") => Ok(result),
            other => Err(format!(
                "expected ')', got {other:?} (mixing operators needs parentheses)"
            )),
        }
    }
}

/// Parses a rich dependency string (must start with `(`).
pub fn parse_rich(s: &str) -> Result<Rich, String> {
    let mut p = Parser {
        toks: tokenize(s),
        pos: 0,
    };
    let r = p.group()?;
    if p.pos != p.toks.len() {
        return Err(format!("trailing text in {s:?}"));
    }
    Ok(r)
}

/// Evaluates a rich dependency given a predicate for atoms and one for `with`/`without`
/// (a single package providing all of the positives and none of the negatives).
pub fn eval_rich(
    r: &Rich,
    atom: &dyn Fn(&str, Sense, &str) -> bool,
    one_pkg: &dyn Fn(&[&Rich], &[&Rich]) -> bool,
) -> bool {
    match r {
        Rich::Atom { name, sense, evr } => atom(name, *sense, evr),
        Rich::And(v) => v.iter().all(|x| eval_rich(x, atom, one_pkg)),
        Rich::Or(v) => v.iter().any(|x| eval_rich(x, atom, one_pkg)),
        Rich::If(a, c, e) => {
            if eval_rich(c, atom, one_pkg) {
                eval_rich(a, atom, one_pkg)
            } else {
                e.as_ref().is_none_or(|e| eval_rich(e, atom, one_pkg))
            }
        }
        Rich::Unless(a, c, e) => {
            if !eval_rich(c, atom, one_pkg) {
                eval_rich(a, atom, one_pkg)
            } else {
                e.as_ref().is_none_or(|e| eval_rich(e, atom, one_pkg))
            }
        }
        Rich::With(v) => one_pkg(&v.iter().collect::<Vec<_>>(), &[]),
        Rich::Without(a, b) => one_pkg(&[a], &[b]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(n: &str) -> Rich {
        Rich::Atom {
            name: n.into(),
            sense: Sense::ANY,
            evr: String::new(),
        }
    }

    #[test]
    fn parses_rpm_examples() {
        let cases: Vec<(&str, Rich)> = vec![
            ("(a and b)", Rich::And(vec![a("a"), a("b")])),
            ("(a or b or c)", Rich::Or(vec![a("a"), a("b"), a("c")])),
            (
                "(a if b else c)",
                Rich::If(Box::new(a("a")), Box::new(a("b")), Some(Box::new(a("c")))),
            ),
            (
                "(a unless b)",
                Rich::Unless(Box::new(a("a")), Box::new(a("b")), None),
            ),
            ("(a with b)", Rich::With(vec![a("a"), a("b")])),
            (
                "(a without b)",
                Rich::Without(Box::new(a("a")), Box::new(a("b"))),
            ),
            (
                "(foo >= 1.0 and (bar or baz < 2))",
                Rich::And(vec![
                    Rich::Atom {
                        name: "foo".into(),
                        sense: Sense::parse(">=").unwrap(),
                        evr: "1.0".into(),
                    },
                    Rich::Or(vec![
                        a("bar"),
                        Rich::Atom {
                            name: "baz".into(),
                            sense: Sense::parse("<").unwrap(),
                            evr: "2".into(),
                        },
                    ]),
                ]),
            ),
            ("((a))", a("a")),
        ];
        for (s, want) in cases {
            assert_eq!(parse_rich(s).unwrap(), want, "{s}");
        }
    }

    #[test]
    fn rejects_bad_input() {
        for s in [
            "(a and b or c)",
            "(a and",
            "(a xor b)",
            "(a >=)",
            "a and b",
            "(a) b",
            "()",
        ] {
            assert!(parse_rich(s).is_err(), "{s}");
        }
    }

    #[test]
    fn evaluates() {
        let have = |n: &str, _: Sense, _: &str| n == "x" || n == "y";
        let one = |_: &[&Rich], _: &[&Rich]| false;
        let cases = [
            ("(x and y)", true),
            ("(x and z)", false),
            ("(z or y)", true),
            ("(z if x)", false),
            ("(z if w)", true),
            ("(z if w else x)", true),
            ("(z unless x)", true),
            ("(z unless w)", false),
        ];
        for (s, want) in cases {
            assert_eq!(eval_rich(&parse_rich(s).unwrap(), &have, &one), want, "{s}");
        }
    }
}
