use process_runtime::process_task;
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum ParseError {
    Empty,
    NotANumber(String),
}

#[process_task]
fn parse(text: String) -> Result<i64, ParseError> {
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    text.parse().map_err(|_| ParseError::NotANumber(text))
}

fn main() {
    assert_eq!(parse.call("12".into()), Ok(12));
    assert_eq!(parse.call(String::new()), Err(ParseError::Empty));
}
