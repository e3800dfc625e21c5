//! Thumbnails: a JPEG, PNG, GIF (first frame) or WebP image decoded in memory, scaled down to
//! fit a square and encoded as JPEG.
//!
//! Images are untrusted input, so every limit is checked before the decoder allocates: the
//! format is sniffed from the first bytes (the declared content type is not trusted), the
//! stored size is capped, the header's dimensions are checked against a pixel budget, and the
//! decoder runs under [`image::Limits`] so that a header lying about its size still cannot make
//! it allocate past the budget.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage};
use vault::ObjectReader;

use super::error::PreviewError;
use super::source;

/// The JPEG quality of thumbnails: small files, no visible blocking at thumbnail sizes.
const JPEG_QUALITY: u8 = 80;

/// Bytes read to recognise the format; every supported signature fits.
const SNIFF_LEN: u64 = 64;

/// Decoded bytes allowed per pixel of the budget: 16-bit RGBA, the widest layout decoded.
const BYTES_PER_PIXEL: u64 = 8;

/// What a thumbnail may cost.
#[derive(Clone, Copy, Debug)]
pub struct ImageLimits {
    /// The largest stored object read, in bytes.
    pub max_source_bytes: u64,
    /// The largest image decoded, in pixels.
    pub max_pixels: u64,
}

/// Makes the JPEG thumbnail of `reader`'s object, fitting `size`×`size`.
///
/// # Errors
/// `Unsupported` when the object is not an image of a supported format or cannot be decoded,
/// `TooLarge` when it passes a limit, or a storage failure.
pub fn from_object(
    reader: &ObjectReader,
    size: u32,
    limits: ImageLimits,
) -> Result<Vec<u8>, PreviewError> {
    let mut source = Vec::new();
    source::read_into(reader, 0, SNIFF_LEN, &mut source)?;
    let format = supported_format(&source)?;
    if reader.len() > limits.max_source_bytes {
        return Err(PreviewError::TooLarge(format!(
            "the object is {} bytes; thumbnails are made of images up to {} bytes",
            reader.len(),
            limits.max_source_bytes
        )));
    }
    source::read_into(reader, SNIFF_LEN, reader.len(), &mut source)?;
    let image = decode(&source, format, limits)?;
    drop(source);
    encode(&fit(&image, size))
}

/// The format of `head`, if it is one thumbnails are made of.
fn supported_format(head: &[u8]) -> Result<ImageFormat, PreviewError> {
    match image::guess_format(head) {
        Ok(
            format @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP),
        ) => Ok(format),
        Ok(_) | Err(_) => Err(PreviewError::Unsupported(
            "no thumbnail for this object: it is not a JPEG, PNG, GIF or WebP image".to_owned(),
        )),
    }
}

/// Decodes `source` (the first frame of an animation), checking the header against `limits`
/// before any pixel buffer exists, and applies the EXIF orientation.
fn decode(
    source: &[u8],
    format: ImageFormat,
    limits: ImageLimits,
) -> Result<DynamicImage, PreviewError> {
    let max_alloc = limits.max_pixels.saturating_mul(BYTES_PER_PIXEL);
    let mut decoder_limits = Limits::default();
    decoder_limits.max_alloc = Some(max_alloc);
    let mut reader = ImageReader::with_format(Cursor::new(source), format);
    reader.limits(decoder_limits);
    let mut decoder = reader.into_decoder().map_err(|err| decode_error(&err))?;

    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(PreviewError::TooLarge(format!(
            "the image is {width}×{height} pixels; thumbnails are made of images up to {} pixels",
            limits.max_pixels
        )));
    }
    if decoder.total_bytes() > max_alloc {
        return Err(PreviewError::TooLarge(format!(
            "the {width}×{height} image needs {} bytes decoded; the limit is {max_alloc}",
            decoder.total_bytes()
        )));
    }

    // A broken orientation tag is no reason to refuse the picture; it is shown as stored.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|err| decode_error(&err))?;
    image.apply_orientation(orientation);
    Ok(image)
}

fn decode_error(err: &ImageError) -> PreviewError {
    tracing::debug!(error = %err, "image refused by its decoder");
    match err {
        ImageError::Limits(_) => PreviewError::TooLarge(
            "the image needs more memory to decode than previews are allowed".to_owned(),
        ),
        ImageError::Unsupported(_) => PreviewError::Unsupported(
            "no thumbnail for this object: its image variant is not supported".to_owned(),
        ),
        ImageError::Decoding(_)
        | ImageError::Parameter(_)
        | ImageError::IoError(_)
        | ImageError::Encoding(_) => PreviewError::Unsupported(
            "no thumbnail for this object: the image is damaged or truncated".to_owned(),
        ),
    }
}

/// Scales `image` down to fit `size`×`size`, keeping its aspect ratio; smaller images are
/// left as they are.
fn fit(image: &DynamicImage, size: u32) -> RgbImage {
    let scaled = if image.width() > size || image.height() > size {
        image.thumbnail(size, size)
    } else {
        image.clone()
    };
    flatten_on_white(&scaled)
}

/// JPEG has no alpha: transparent pixels become the white a page would show through them.
fn flatten_on_white(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over_white = |c: u8| {
            let blended = (u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a)) + 127) / 255;
            u8::try_from(blended).unwrap_or(u8::MAX)
        };
        image::Rgb([over_white(r), over_white(g), over_white(b)])
    })
}

fn encode(image: &RgbImage) -> Result<Vec<u8>, PreviewError> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode_image(image)
        .map_err(PreviewError::Encode)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use image::{ImageBuffer, Rgba};

    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = ImageBuffer::from_fn(width, height, |x, y| {
            Rgba([
                (x % 256) as u8,
                (y % 256) as u8,
                90,
                if x < 4 { 0 } else { 255 },
            ])
        });
        let mut out = Vec::new();
        DynamicImage::ImageRgba8(image)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    const LIMITS: ImageLimits = ImageLimits {
        max_source_bytes: 1 << 20,
        max_pixels: 1_000_000,
    };

    #[test]
    fn thumbnails_fit_the_square_and_keep_the_aspect_ratio() {
        let image = decode(&png(300, 150), ImageFormat::Png, LIMITS).unwrap();
        let thumb = fit(&image, 100);
        assert_eq!((thumb.width(), thumb.height()), (100, 50));
        let jpeg = encode(&thumb).unwrap();
        assert_eq!(image::guess_format(&jpeg).unwrap(), ImageFormat::Jpeg);
    }

    #[test]
    fn small_images_are_not_enlarged() {
        let image = decode(&png(20, 10), ImageFormat::Png, LIMITS).unwrap();
        let thumb = fit(&image, 256);
        assert_eq!((thumb.width(), thumb.height()), (20, 10));
    }

    #[test]
    fn transparency_becomes_white() {
        let image = decode(&png(8, 8), ImageFormat::Png, LIMITS).unwrap();
        let flat = fit(&image, 8);
        assert_eq!(flat.get_pixel(0, 0).0, [255, 255, 255]);
    }

    #[test]
    fn images_over_the_pixel_budget_are_refused_before_decoding() {
        let limits = ImageLimits {
            max_pixels: 100,
            ..LIMITS
        };
        let refused = decode(&png(20, 20), ImageFormat::Png, limits);
        assert!(
            matches!(refused, Err(PreviewError::TooLarge(_))),
            "{refused:?}"
        );
    }

    #[test]
    fn only_the_four_formats_are_recognised() {
        assert!(supported_format(&png(1, 1)).is_ok());
        assert!(supported_format(b"GIF89a\x01\x00\x01\x00").is_ok());
        assert!(supported_format(b"BM\x00\x00\x00\x00").is_err());
        assert!(supported_format(b"hello world").is_err());
    }

    #[test]
    fn damaged_images_are_unsupported_not_fatal() {
        let mut broken = png(40, 40);
        broken.truncate(broken.len() / 2);
        let refused = decode(&broken, ImageFormat::Png, LIMITS);
        assert!(
            matches!(refused, Err(PreviewError::Unsupported(_))),
            "{refused:?}"
        );
    }
}
