//! Text checks on GraphQL writes: seaography writes entity rows as sent, without the checks the
//! REST handlers make, so [`check_mutation`] refuses a mutation any of whose string inputs
//! (literal arguments or variables) contains a control character — NUL, escape sequences, line
//! breaks in a name. Tabs and line breaks are allowed in other text (a description may have
//! several lines); in a field called `name` or ending in `_name`/`Name` nothing is.

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql::{Value, Variables};

/// `Err(message)` when a mutation in `doc` carries a string with a control character, either
/// literally or through `variables`.
pub fn check_mutation(doc: &ExecutableDocument, variables: &Variables) -> Result<(), String> {
    let operations: Vec<_> = match &doc.operations {
        DocumentOperations::Single(op) => vec![op],
        DocumentOperations::Multiple(ops) => ops.values().collect(),
    };
    for op in operations {
        if op.node.ty != OperationType::Mutation {
            continue;
        }
        check_selection(&op.node.selection_set.node, doc, 0)?;
        for (name, value) in variables.iter() {
            check_const(name.as_str(), value)?;
        }
    }
    Ok(())
}

fn check_selection(
    set: &SelectionSet,
    doc: &ExecutableDocument,
    depth: usize,
) -> Result<(), String> {
    if depth > 32 {
        return Ok(()); // the depth limit refuses such documents anyway
    }
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => {
                for (name, value) in &f.node.arguments {
                    // Variables count as null here; their values are checked on their own.
                    let value = value
                        .node
                        .clone()
                        .into_const_with(|_| Ok::<_, std::convert::Infallible>(Value::Null))
                        .unwrap_or(Value::Null);
                    check_const(name.node.as_str(), &value)?;
                }
                check_selection(&f.node.selection_set.node, doc, depth + 1)?;
            }
            Selection::InlineFragment(fr) => {
                check_selection(&fr.node.selection_set.node, doc, depth + 1)?;
            }
            Selection::FragmentSpread(spread) => {
                if let Some(def) = doc.fragments.get(spread.node.fragment_name.node.as_str()) {
                    check_selection(&def.node.selection_set.node, doc, depth + 1)?;
                }
            }
        }
    }
    Ok(())
}

fn is_name(key: &str) -> bool {
    key == "name" || key.ends_with("_name") || key.ends_with("Name")
}

fn check_text(key: &str, text: &str) -> Result<(), String> {
    let name = is_name(key);
    let bad = text.chars().find(|c| c.is_control() && (name || !matches!(c, '\n' | '\r' | '\t')));
    match bad {
        None => Ok(()),
        Some(c) => Err(format!(
            "{key} may not contain control characters; {} contains U+{:04X}",
            pv_core::input::quote(text),
            u32::from(c)
        )),
    }
}

fn check_const(key: &str, value: &Value) -> Result<(), String> {
    match value {
        Value::String(s) => check_text(key, s),
        Value::List(items) => items.iter().try_for_each(|v| check_const(key, v)),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| check_const(k.as_str(), v)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(query: &str, variables: serde_json::Value) -> Result<(), String> {
        let doc = async_graphql::parser::parse_query(query).unwrap();
        check_mutation(&doc, &Variables::from_json(variables))
    }

    #[test]
    fn mutations_with_control_characters_are_refused() {
        let q = r#"mutation { propertiesCreateOne(data: { name: "Home\u0000" }) { id } }"#;
        let e = check(q, serde_json::json!({})).unwrap_err();
        assert!(e.contains("name may not contain control characters"), "{e}");
        let q = "mutation($d: PropertiesInsertInput!) { propertiesCreateOne(data: $d) { id } }";
        let e = check(q, serde_json::json!({ "d": { "name": "a\nb" } })).unwrap_err();
        assert!(e.contains("U+000A"), "{e}");
        // Line breaks are fine in other text; queries are not checked.
        assert!(check(q, serde_json::json!({ "d": { "notes": "a\nb" } })).is_ok());
        assert!(
            check(
                r#"{ properties(filters: { name: { eq: "a\u0000" } }) { nodes { id } } }"#,
                serde_json::json!({})
            )
            .is_ok()
        );
    }
}
