//! A JSON array of objects, read one element at a time.

use std::io::{BufRead, Read};

use serde::Deserialize;
use serde_json::Value;

use super::{Items, not_an_object};

/// The configurations of `reader`.
pub(super) fn read(reader: impl BufRead + Send + 'static) -> Items {
    let mut array = Array {
        reader,
        line: 1,
        state: State::Start,
    };
    Box::new(std::iter::from_fn(move || {
        let item = array.next();
        if !matches!(item, Some(Ok(_))) {
            array.state = State::Done;
        }
        item
    }))
}

enum State {
    Start,
    Item,
    Done,
}

struct Array<R> {
    reader: R,
    line: usize,
    state: State,
}

impl<R: BufRead> Array<R> {
    fn next(&mut self) -> Option<Result<super::Config, (usize, String)>> {
        let at = |s: &Self, m: String| Some(Err((s.line, m)));
        match self.state {
            State::Done => return None,
            State::Start => {
                match self.peek() {
                    Ok(Some(b'[')) => self.reader.consume(1),
                    Ok(_) => return at(self, "expected a JSON array".into()),
                    Err(e) => return at(self, format!("cannot read: {e}")),
                }
                match self.peek() {
                    Ok(Some(b']')) => return self.end(),
                    Err(e) => return at(self, format!("cannot read: {e}")),
                    Ok(_) => {}
                }
                self.state = State::Item;
            }
            State::Item => match self.peek() {
                Ok(Some(b',')) => self.reader.consume(1),
                Ok(Some(b']')) => return self.end(),
                Ok(Some(c)) => {
                    return at(
                        self,
                        format!("expected `,` or `]` after an item, found `{}`", c as char),
                    );
                }
                Ok(None) => return at(self, "the array is not closed with `]`".into()),
                Err(e) => return at(self, format!("cannot read: {e}")),
            },
        }
        if let Err(e) = self.peek() {
            return at(self, format!("cannot read: {e}"));
        }
        let start = self.line;
        let mut de = serde_json::Deserializer::from_reader(Counting(self));
        Some(match Value::deserialize(&mut de) {
            Ok(Value::Object(m)) => Ok((start, m)),
            Ok(other) => Err((start, not_an_object(&other))),
            Err(e) => Err((self.line, format!("invalid JSON: {e}"))),
        })
    }

    /// After `]`: nothing but whitespace may follow.
    fn end(&mut self) -> Option<Result<super::Config, (usize, String)>> {
        self.reader.consume(1);
        self.state = State::Done;
        match self.peek() {
            Ok(None) => None,
            Ok(Some(_)) => Some(Err((self.line, "text after the end of the array".into()))),
            Err(e) => Some(Err((self.line, format!("cannot read: {e}")))),
        }
    }

    /// Skips whitespace (counting lines) and returns the next byte, left unread.
    fn peek(&mut self) -> std::io::Result<Option<u8>> {
        loop {
            let buf = self.reader.fill_buf()?;
            let Some(&b) = buf.first() else {
                return Ok(None);
            };
            if !b.is_ascii_whitespace() {
                return Ok(Some(b));
            }
            if b == b'\n' {
                self.line += 1;
            }
            self.reader.consume(1);
        }
    }
}

/// Reads through the array's reader, counting lines. serde_json reads one byte at a time and
/// stops right after an object's `}`, so nothing past the element is taken.
struct Counting<'a, R>(&'a mut Array<R>);

impl<R: BufRead> Read for Counting<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.reader.read(out)?;
        self.0.line += out[..n].iter().filter(|b| **b == b'\n').count();
        Ok(n)
    }
}
