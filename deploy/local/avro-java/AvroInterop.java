import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.apache.avro.Conversions;
import org.apache.avro.LogicalType;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.data.TimeConversions;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericEnumSymbol;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.generic.IndexedRecord;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;

/**
 * Avro single-object encoding as the Avro Java library (the reference implementation) does it,
 * for the interoperability test of our Python codec. One JSON or hex line per message on stdin
 * and stdout:
 *
 * <pre>
 *   fingerprint SCHEMA.avsc...        one {"schema", "fingerprint", "canonical_form"} per schema
 *   decode READER.avsc WRITER.avsc... hex message in, {"event": ...} or {"error", "message"} out
 *   encode WRITER.avsc                JSON event in, hex message out
 * </pre>
 *
 * Events as JSON: unions unwrapped (null or the value), enums as their symbol, timestamp-micros as
 * ISO-8601 (an offset is accepted on input; output is UTC with "Z"), uuid as text. Timestamps and
 * UUIDs go through the library's logical type conversions, so their meaning is checked too.
 */
public final class AvroInterop {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final JsonNodeFactory NODES = JsonNodeFactory.instance;
  private static final HexFormat HEX = HexFormat.of();

  private AvroInterop() {}

  public static void main(String[] args) throws IOException {
    if (args.length < 2) {
      usage();
    }
    GenericData model = new GenericData();
    model.addLogicalTypeConversion(new TimeConversions.TimestampMicrosConversion());
    model.addLogicalTypeConversion(new Conversions.UUIDConversion());
    PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
    BufferedReader in =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    switch (args[0]) {
      case "fingerprint" -> {
        for (int i = 1; i < args.length; i++) {
          Schema schema = parse(args[i]);
          ObjectNode line = NODES.objectNode();
          line.put("schema", args[i]);
          long fingerprint = SchemaNormalization.parsingFingerprint64(schema);
          line.put("fingerprint", String.format("%016x", fingerprint));
          line.put("canonical_form", SchemaNormalization.toParsingForm(schema));
          out.println(JSON.writeValueAsString(line));
        }
      }
      case "decode" -> {
        BinaryMessageDecoder<GenericRecord> decoder =
            new BinaryMessageDecoder<>(model, parse(args[1]));
        for (int i = 2; i < args.length; i++) {
          decoder.addSchema(parse(args[i]));
        }
        for (String hex = in.readLine(); hex != null; hex = in.readLine()) {
          ObjectNode line = NODES.objectNode();
          try {
            line.set("event", toJson(decoder.decode(HEX.parseHex(hex.strip()))));
          } catch (IOException | RuntimeException e) {
            line.put("error", e.getClass().getSimpleName());
            line.put("message", String.valueOf(e.getMessage()));
          }
          out.println(JSON.writeValueAsString(line));
        }
      }
      case "encode" -> {
        Schema writer = parse(args[1]);
        BinaryMessageEncoder<GenericRecord> encoder = new BinaryMessageEncoder<>(model, writer);
        for (String text = in.readLine(); text != null; text = in.readLine()) {
          GenericRecord record = (GenericRecord) fromJson(writer, JSON.readTree(text));
          ByteBuffer encoded = encoder.encode(record);
          byte[] bytes = new byte[encoded.remaining()];
          encoded.get(bytes);
          out.println(HEX.formatHex(bytes));
        }
      }
      default -> usage();
    }
    out.flush();
  }

  private static void usage() {
    System.err.println(
        "usage: AvroInterop fingerprint SCHEMA... | decode READER WRITER... | encode WRITER");
    System.exit(2);
  }

  private static Schema parse(String path) throws IOException {
    // One parser per file: every version defines the same record names.
    return new Schema.Parser().parse(new File(path));
  }

  /** A decoded datum as JSON, by its runtime type (the decoder already applied the schema). */
  private static JsonNode toJson(Object datum) {
    if (datum == null) {
      return NODES.nullNode();
    } else if (datum instanceof IndexedRecord record) {
      ObjectNode node = NODES.objectNode();
      for (Schema.Field field : record.getSchema().getFields()) {
        node.set(field.name(), toJson(record.get(field.pos())));
      }
      return node;
    } else if (datum instanceof Map<?, ?> map) {
      ObjectNode node = NODES.objectNode();
      map.forEach((key, value) -> node.set(key.toString(), toJson(value)));
      return node;
    } else if (datum instanceof Collection<?> items) {
      ArrayNode node = NODES.arrayNode();
      items.forEach(item -> node.add(toJson(item)));
      return node;
    } else if (datum instanceof CharSequence
        || datum instanceof GenericEnumSymbol<?>
        || datum instanceof Instant
        || datum instanceof UUID) {
      return NODES.textNode(datum.toString());
    } else if (datum instanceof Long value) {
      return NODES.numberNode(value);
    } else if (datum instanceof Integer value) {
      return NODES.numberNode(value);
    } else if (datum instanceof Boolean value) {
      return NODES.booleanNode(value);
    } else if (datum instanceof Double value) {
      return NODES.numberNode(value);
    } else if (datum instanceof Float value) {
      return NODES.numberNode(value);
    }
    throw new IllegalArgumentException("no JSON form for " + datum.getClass().getName());
  }

  /** The datum of ``schema`` that ``json`` describes, with logical types as Java objects. */
  private static Object fromJson(Schema schema, JsonNode json) {
    LogicalType logical = schema.getLogicalType();
    String logicalName = logical == null ? "" : logical.getName();
    switch (schema.getType()) {
      case RECORD -> {
        GenericData.Record record = new GenericData.Record(schema);
        for (Schema.Field field : schema.getFields()) {
          JsonNode value = json.get(field.name());
          record.put(
              field.pos(),
              value == null
                  ? GenericData.get().getDefaultValue(field)
                  : fromJson(field.schema(), value));
        }
        return record;
      }
      case UNION -> {
        if (json.isNull()) {
          return null;
        }
        List<Schema> branches = new ArrayList<>();
        for (Schema branch : schema.getTypes()) {
          if (branch.getType() != Schema.Type.NULL) {
            branches.add(branch);
          }
        }
        if (branches.size() != 1) {
          throw new IllegalArgumentException("only [null, T] unions are supported: " + schema);
        }
        return fromJson(branches.get(0), json);
      }
      case ENUM -> {
        return new GenericData.EnumSymbol(schema, json.textValue());
      }
      case ARRAY -> {
        GenericData.Array<Object> array = new GenericData.Array<>(json.size(), schema);
        json.forEach(item -> array.add(fromJson(schema.getElementType(), item)));
        return array;
      }
      case MAP -> {
        Map<String, Object> map = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> entry : json.properties()) {
          map.put(entry.getKey(), fromJson(schema.getValueType(), entry.getValue()));
        }
        return map;
      }
      case STRING -> {
        return "uuid".equals(logicalName) ? UUID.fromString(json.textValue()) : json.textValue();
      }
      case LONG -> {
        return "timestamp-micros".equals(logicalName)
            ? OffsetDateTime.parse(json.textValue()).toInstant()
            : json.longValue();
      }
      case INT -> {
        return json.intValue();
      }
      case BOOLEAN -> {
        return json.booleanValue();
      }
      case DOUBLE -> {
        return json.doubleValue();
      }
      case FLOAT -> {
        return json.floatValue();
      }
      case NULL -> {
        return null;
      }
      default -> throw new IllegalArgumentException("unsupported schema type " + schema);
    }
  }
}
