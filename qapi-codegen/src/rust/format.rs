//! Formatting: prettyplease, then doc comments written in as `///` lines.

use super::*;

/// One `#[doc]` attribute holding a whole doc comment; prettyplease prints
/// it as a `/** */` block, which [`line_docs`] turns back into `///`
/// lines. (The generator uses placeholders, see [`Gen::doc_attrs`]; the
/// tests use this to check [`line_docs`].)
#[cfg(test)]
pub(super) fn doc_attr(lines: &[String]) -> TokenStream {
    if lines.is_empty() {
        return TokenStream::new();
    }
    let mut text = doc_text(lines);
    if lines.len() == 1 {
        text.pop();
    }
    quote!(#[doc = #text])
}

/// A doc comment's text: each line after a space (as `/// line` has it),
/// empty lines empty, every line ending in a newline.
pub(super) fn doc_text(lines: &[String]) -> String {
    let mut text = String::new();
    for l in lines {
        if !l.is_empty() {
            text.push(' ');
            text.push_str(l);
        }
        text.push('\n');
    }
    text
}

pub(super) fn format_file(tokens: TokenStream, what: &str) -> crate::Result<String> {
    let file: syn::File = syn::parse2(tokens).map_err(|e| {
        crate::Error::Generate(format!("generated module '{what}' does not parse: {e}"))
    })?;
    Ok(line_docs(&prettyplease::unparse(&file)))
}

/// Starts the placeholder of a doc comment (a private-use character, then
/// the comment's number); see [`Gen::doc_attrs`].
pub(super) const DOC_MARK: char = '\u{E000}';

/// Replaces each `///` placeholder line that [`Gen::doc_attrs`] made with
/// its doc comment's lines, at the same indentation.
pub(super) fn fill_docs(src: &str, docs: &[String]) -> String {
    let mut out =
        String::with_capacity(src.len() + docs.iter().map(|d| d.len() + 16).sum::<usize>());
    for line in src.split_inclusive('\n') {
        let body = line.trim_start_matches(' ');
        let indent = &line[..line.len() - body.len()];
        let doc = body
            .strip_prefix("///")
            .and_then(|b| b.strip_prefix(DOC_MARK))
            .and_then(|n| n.trim_end().parse::<usize>().ok())
            .and_then(|n| docs.get(n));
        match doc {
            Some(doc) => {
                for text in doc.lines() {
                    out.push_str(indent);
                    out.push_str("///");
                    out.push_str(text.trim_end());
                    out.push('\n');
                }
            }
            None => out.push_str(line),
        }
    }
    out
}

/// Rewrites the `/** .. */` blocks prettyplease prints for multi-line doc
/// attributes as indented `///` lines. A block starts with `/**` after
/// indentation; its text lines each start with a space or are empty (as
/// [`doc_attr`] writes them), and it ends with a line `*/`. Anything
/// else is left alone.
pub(super) fn line_docs(src: &str) -> String {
    let mut out = String::with_capacity(src.len() + src.len() / 8);
    let mut lines = src.split_inclusive('\n');
    while let Some(line) = lines.next() {
        let body = line.trim_start_matches(' ');
        let indent = &line[..line.len() - body.len()];
        let Some(first) = body.strip_prefix("/**").filter(|r| !r.starts_with('*')) else {
            out.push_str(line);
            continue;
        };
        let mut block = vec![first.trim_end_matches('\n')];
        let mut closed = false;
        for next in lines.by_ref() {
            let text = next.trim_end_matches('\n');
            if text == "*/" {
                closed = true;
                break;
            }
            block.push(text);
        }
        if !closed {
            // Not a block we wrote: keep it as it was.
            out.push_str(line);
            for text in &block[1..] {
                out.push_str(text);
                out.push('\n');
            }
            continue;
        }
        for text in block {
            out.push_str(indent);
            out.push_str("///");
            out.push_str(text.trim_end());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(tokens: TokenStream) -> String {
        format_file(tokens, "test").expect("formats")
    }

    #[test]
    fn multi_line_docs_print_as_line_comments() {
        let doc = doc_attr(&["First.".into(), String::new(), "  Indented.".into()]);
        let out = format(quote! {
            #doc
            pub struct A {
                #doc
                pub x: u8,
            }
        });
        assert_eq!(
            out,
            "/// First.\n///\n///   Indented.\npub struct A {\n    /// First.\n    ///\n    ///   Indented.\n    pub x: u8,\n}\n"
        );
    }

    #[test]
    fn doc_placeholders_are_filled_in_at_their_indentation() {
        let docs = vec![" One.\n\n Two.\n".to_string(), " Field.\n".to_string()];
        let src =
            format!("///{DOC_MARK}0\npub struct A {{\n    ///{DOC_MARK}1\n    pub x: u8,\n}}\n");
        assert_eq!(
            fill_docs(&src, &docs),
            "/// One.\n///\n/// Two.\npub struct A {\n    /// Field.\n    pub x: u8,\n}\n"
        );
        // A number with no comment, or other text, is left as it is.
        let odd = format!("///{DOC_MARK}7\n/// plain\n");
        assert_eq!(fill_docs(&odd, &docs), odd);
    }

    #[test]
    fn single_line_docs_and_other_text_stay() {
        let doc = doc_attr(&["Only line.".into()]);
        assert_eq!(
            format(quote!(#doc pub struct B;)),
            "/// Only line.\npub struct B;\n"
        );
        // Text that can't be a block comment stays an attribute.
        let doc = doc_attr(&["a */ b".into(), "c".into()]);
        let out = format(quote!(#doc pub struct C;));
        assert!(out.starts_with("#[doc = "), "{out}");
        // A block without its closing line is not touched.
        assert_eq!(line_docs("/** x\n y\n"), "/** x\n y\n");
    }
}
