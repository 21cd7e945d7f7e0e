// The person mask's file format (docs/conventions.md, "Person mask"; generator/masks.py): an 8-bit
// greyscale PNG, one byte per pixel, 1 where the person is the visible surface and 0 elsewhere. The
// encoder lives in the engine-free core so that the Unity player does not depend on which texture
// formats ImageConversion can encode, and so that mcs tests it.
using System;
using System.IO;
using System.IO.Compression;

namespace PoseBridge.Core
{
    public static class MaskPng
    {
        static readonly byte[] Signature = { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A };

        /// <summary>
        /// PNG bytes of a width x height mask: greyscale, 8-bit, every row with filter 0, one zlib IDAT.
        /// <paramref name="mask"/> holds one byte per pixel, row-major; any nonzero byte is the person (written
        /// as 1). With <paramref name="bottomUp"/> its rows run bottom to top (a Unity readback) and are
        /// flipped, since the PNG's first row is the image's top row.
        /// </summary>
        public static byte[] Encode(byte[] mask, int width, int height, bool bottomUp = false)
        {
            if (width < 1 || height < 1 || width > Protocol.MaxImageSide || height > Protocol.MaxImageSide)
                throw new ArgumentException("mask size must lie in [1, " + Protocol.MaxImageSide + "], got " + width + "x" + height);
            if (mask == null || mask.Length != width * height)
                throw new ArgumentException("mask needs " + (width * height) + " bytes, got " + (mask == null ? 0 : mask.Length));
            var rows = new byte[height * (width + 1)];
            for (int y = 0; y < height; y++)
            {
                int src = (bottomUp ? height - 1 - y : y) * width, dst = y * (width + 1) + 1;  // byte 0 of a row: filter 0
                for (int x = 0; x < width; x++) rows[dst + x] = mask[src + x] != 0 ? (byte)1 : (byte)0;
            }
            var ihdr = new byte[13];
            PutUInt32(ihdr, 0, (uint)width);
            PutUInt32(ihdr, 4, (uint)height);
            ihdr[8] = 8;  // bit depth; colour type 0 (greyscale), compression 0, filter 0, no interlace
            var png = new MemoryStream();
            png.Write(Signature, 0, Signature.Length);
            WriteChunk(png, "IHDR", ihdr);
            WriteChunk(png, "IDAT", Zlib(rows));
            WriteChunk(png, "IEND", new byte[0]);
            return png.ToArray();
        }

        /// <summary>A zlib stream (RFC 1950): header, raw deflate, Adler-32 of the data.</summary>
        static byte[] Zlib(byte[] data)
        {
            var z = new MemoryStream();
            z.WriteByte(0x78);
            z.WriteByte(0x01);  // 32 KiB window, fastest; (0x78 << 8 | 0x01) % 31 == 0
            using (var deflate = new DeflateStream(z, CompressionLevel.Fastest, true)) deflate.Write(data, 0, data.Length);
            uint a = 1, b = 0;
            foreach (byte x in data)
            {
                a = (a + x) % 65521;
                b = (b + a) % 65521;
            }
            var adler = new byte[4];
            PutUInt32(adler, 0, (b << 16) | a);
            z.Write(adler, 0, 4);
            return z.ToArray();
        }

        static void WriteChunk(Stream s, string kind, byte[] data)
        {
            var head = new byte[8];
            PutUInt32(head, 0, (uint)data.Length);
            for (int i = 0; i < 4; i++) head[4 + i] = (byte)kind[i];
            var crcInput = new byte[4 + data.Length];
            Buffer.BlockCopy(head, 4, crcInput, 0, 4);
            Buffer.BlockCopy(data, 0, crcInput, 4, data.Length);
            var crc = new byte[4];
            PutUInt32(crc, 0, Crc32.Compute(crcInput));
            s.Write(head, 0, 8);
            s.Write(data, 0, data.Length);
            s.Write(crc, 0, 4);
        }

        static void PutUInt32(byte[] b, int at, uint v)
        {
            b[at] = (byte)(v >> 24);
            b[at + 1] = (byte)(v >> 16);
            b[at + 2] = (byte)(v >> 8);
            b[at + 3] = (byte)v;
        }
    }
}
