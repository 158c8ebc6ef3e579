//! `eauth add --qr` on images made by other programs: Debian's `qrencode`, and the `qrcode`
//! crate drawn into a page-like screenshot, saved as PNG and as JPEG.

use std::{path::Path, process::Command};

use image::{DynamicImage, GenericImage, GrayImage, ImageFormat, Luma, imageops};

use super::{Sandbox, require_tool};

const GUIDE_URI: &str = "otpauth://totp/My%20Portal:jane@example.com?\
    secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=My%20Portal&algorithm=SHA1&digits=6\
    &client_id=84c2ad6c-62eb-4217-8f46-a66852e6fe92&email=jane@example.com";

/// Adds from the image, then checks the account is the URI's: label, and the RFC 6238 code
/// at 59 s (94287082, of which 6 digits are the last 6).
fn assert_adds_the_guides_account(sandbox: &Sandbox, image: &Path) {
    let added = sandbox
        .run(&["add", "--qr", image.to_str().expect("UTF-8")])
        .ok();
    assert_eq!(added.stdout, "added My Portal:jane@example.com\n");
    let code = sandbox.run(&["code", "jane", "--at", "59"]).ok();
    assert_eq!(code.stdout, "287082  1s left  My Portal:jane@example.com\n");
    let stored: serde_json::Value = serde_json::from_slice(&sandbox.file_bytes()).expect("JSON");
    assert_eq!(
        stored["accounts"][0]["client_id"],
        "84c2ad6c-62eb-4217-8f46-a66852e6fe92"
    );
}

#[test]
fn a_png_from_qrencode_is_read() {
    let sandbox = Sandbox::new();
    let image = sandbox.path("qrencode.png");
    let status = Command::new(require_tool("qrencode", "qrencode"))
        .arg("-o")
        .arg(&image)
        .arg(GUIDE_URI)
        .status()
        .expect("qrencode runs");
    assert!(status.success());
    assert_adds_the_guides_account(&sandbox, &image);
}

/// A gray page, as a screenshot of the enrollment page would be, with text-like bars and
/// the QR code at its module size.
fn screenshot(uri: &str) -> GrayImage {
    let code = qrcode::QrCode::new(uri.as_bytes())
        .expect("encodes")
        .render::<Luma<u8>>()
        .module_dimensions(4, 4)
        .build();
    let mut page = GrayImage::from_pixel(1024, 768, Luma([245]));
    for line in 0..6 {
        let bar = GrayImage::from_pixel(500, 12, Luma([60]));
        page.copy_from(&bar, 60, 40 + line * 30).expect("fits");
    }
    page.copy_from(&code, 300, 260).expect("fits");
    page
}

#[test]
fn a_png_screenshot_with_a_qrcode_crate_code_is_read() {
    let sandbox = Sandbox::new();
    let image = sandbox.path("screenshot.png");
    screenshot(GUIDE_URI).save(&image).expect("saved");
    assert_adds_the_guides_account(&sandbox, &image);
}

#[test]
fn a_scaled_jpeg_screenshot_is_read() {
    let sandbox = Sandbox::new();
    // Scaled by a non-integer factor and JPEG-compressed, as a phone photo or a HiDPI
    // screenshot shared in a chat would be.
    let page = screenshot(GUIDE_URI);
    let scaled = imageops::resize(&page, 1434, 1075, imageops::FilterType::Triangle);
    let image = sandbox.path("screenshot.jpg");
    DynamicImage::ImageLuma8(scaled)
        .to_rgb8()
        .save_with_format(&image, ImageFormat::Jpeg)
        .expect("saved");
    assert_adds_the_guides_account(&sandbox, &image);
}
