//! Reading the text of a QR code out of a PNG or JPEG image, such as a screenshot of the page
//! that shows an enrollment QR code.

use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage, ImageReader};

/// Why no text came out of an image.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// The file cannot be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The image file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not an image this build decodes, or a corrupt one.
    #[error("{} is not a readable PNG or JPEG image ({reason})", path.display())]
    NotAnImage {
        /// The image file.
        path: PathBuf,
        /// The decoder's reason.
        reason: String,
    },
    /// No QR code was found in the image.
    #[error("no QR code found in {}", path.display())]
    NoCode {
        /// The image file.
        path: PathBuf,
    },
    /// QR codes were found but none could be read.
    #[error("the QR code in {} cannot be read (blurred, cut off or too small?)", path.display())]
    Unreadable {
        /// The image file.
        path: PathBuf,
    },
    /// Several different `otpauth://` codes: which one was meant?
    #[error("{} holds {count} different otpauth QR codes: crop it to the one to add", path.display())]
    Several {
        /// The image file.
        path: PathBuf,
        /// How many.
        count: usize,
    },
}

/// The text of the QR code in the image at `path`. Where the image holds several codes, the
/// one with an `otpauth:` URI is chosen (a page may show other codes too, e.g. app store links).
pub fn read_text(path: &Path) -> Result<String, QrError> {
    let image = ImageReader::open(path)
        .and_then(ImageReader::with_guessed_format)
        .map_err(|source| QrError::Read {
            path: path.to_owned(),
            source,
        })?
        .decode()
        .map_err(|error| QrError::NotAnImage {
            path: path.to_owned(),
            reason: one_line(&error.to_string()),
        })?;
    decode(&image).map_err(|failure| failure.at(path))
}

/// Why [`decode`] found no single text; [`Failure::at`] names the file.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    NoCode,
    Unreadable,
    Several(usize),
}

impl Failure {
    fn at(self, path: &Path) -> QrError {
        let path = path.to_owned();
        match self {
            Self::NoCode => QrError::NoCode { path },
            Self::Unreadable => QrError::Unreadable { path },
            Self::Several(count) => QrError::Several { path, count },
        }
    }
}

fn decode(image: &DynamicImage) -> Result<String, Failure> {
    let gray = image.to_luma8();
    let mut texts = texts_in(gray.clone());
    if texts.is_none() {
        // Dark-mode pages draw light modules on a dark background, which the detector,
        // looking for dark finder patterns, does not see.
        let mut inverted = gray;
        image::imageops::invert(&mut inverted);
        texts = texts_in(inverted);
    }
    let texts = texts.ok_or(Failure::NoCode)?;
    let otpauth: Vec<&String> = texts
        .iter()
        .filter(|text| {
            text.trim_start()
                .get(..8)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("otpauth:"))
        })
        .collect();
    match (otpauth.as_slice(), texts.first()) {
        ([one], _) => Ok((*one).clone()),
        ([], Some(first)) => Ok(first.clone()),
        ([], None) => Err(Failure::Unreadable),
        (several, _) => Err(Failure::Several(several.len())),
    }
}

/// The texts of the codes that decode, in the detector's order and without repeats; `None`
/// when no code is detected at all.
fn texts_in(gray: GrayImage) -> Option<Vec<String>> {
    let mut prepared = rqrr::PreparedImage::prepare(gray);
    let grids = prepared.detect_grids();
    if grids.is_empty() {
        return None;
    }
    let mut texts: Vec<String> = Vec::new();
    for (_, text) in grids.iter().filter_map(|grid| grid.decode().ok()) {
        if !texts.contains(&text) {
            texts.push(text);
        }
    }
    Some(texts)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use image::{GenericImage, Luma};
    use qrcode::QrCode;

    use super::*;

    const URI: &str =
        "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example";

    fn qr(text: &str) -> GrayImage {
        QrCode::new(text.as_bytes())
            .expect("encodes")
            .render::<Luma<u8>>()
            .min_dimensions(200, 200)
            .build()
    }

    /// A light page with the given codes side by side, as in a screenshot.
    fn page(codes: &[GrayImage]) -> DynamicImage {
        let width: u32 = codes.iter().map(|c| c.width() + 40).sum::<u32>() + 40;
        let height: u32 = codes.iter().map(GrayImage::height).max().unwrap_or(0) + 80;
        let mut page = GrayImage::from_pixel(width, height, Luma([240]));
        let mut x = 40;
        for code in codes {
            page.copy_from(code, x, 40).expect("fits");
            x += code.width() + 40;
        }
        DynamicImage::ImageLuma8(page)
    }

    #[test]
    fn a_code_on_a_page_is_read() {
        assert_eq!(decode(&page(&[qr(URI)])), Ok(URI.to_owned()));
    }

    #[test]
    fn a_dark_mode_code_is_read() {
        let DynamicImage::ImageLuma8(mut dark) = page(&[qr(URI)]) else {
            unreachable!("page() makes a gray image")
        };
        image::imageops::invert(&mut dark);
        assert_eq!(decode(&DynamicImage::ImageLuma8(dark)), Ok(URI.to_owned()));
    }

    #[test]
    fn the_otpauth_code_is_chosen_among_others() {
        let other = qr("https://play.google.com/store/apps/details?id=example");
        assert_eq!(decode(&page(&[other, qr(URI)])), Ok(URI.to_owned()));
    }

    #[test]
    fn two_different_otpauth_codes_are_ambiguous_and_the_same_twice_is_not() {
        let second = "otpauth://totp/Example:bob?secret=JBSWY3DPEHPK3PXP";
        assert_eq!(
            decode(&page(&[qr(URI), qr(second)])),
            Err(Failure::Several(2))
        );
        assert_eq!(decode(&page(&[qr(URI), qr(URI)])), Ok(URI.to_owned()));
    }

    #[test]
    fn an_image_without_a_code_has_none() {
        assert_eq!(decode(&page(&[])), Err(Failure::NoCode));
    }
}
